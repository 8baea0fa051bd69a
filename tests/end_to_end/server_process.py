"""A real Parley server in a child process (uvicorn on a free loopback port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from tests.conftest import TIMEOUT_SCALE

ROOT = Path(__file__).resolve().parents[2]
_POLL_S = 0.005  # between two looks at a starting server's port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ParleyServer:
    """Start with `start()`, stop with `stop()` (graceful) or `kill()` (SIGKILL, a crash)."""

    def __init__(self, *, database_url: str, log_path: Path, env: dict[str, str] | None = None):
        self.database_url = database_url
        self.log_path = log_path
        self.extra_env = env or {}
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, same_port: bool = False) -> None:
        """Start on a free port (or on the previous one: a restart that clients reconnect to)."""
        if not (same_port and self.port):
            self.port = free_port()
        env = {
            **os.environ,
            "PARLEY_DATABASE_URL": self.database_url,
            "PARLEY_ENV": "test",
            "PARLEY_LOG_LEVEL": "WARNING",
            "PARLEY_SANDBOX_URL": f"http://127.0.0.1:{self.port}/sandbox",
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "server.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30 * TIMEOUT_SCALE
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log()}")
            if self._listening() and self._healthy():
                return
            time.sleep(_POLL_S)
        self.kill()
        raise RuntimeError(f"the server did not answer /health in time:\n{self.log()}")

    def _listening(self) -> bool:
        """Whether the port takes connections: uvicorn binds it once the application's startup
        (migrations, the driver's load) is done. A refused connection costs microseconds, so
        this is asked often and the start is seen within `_POLL_S`."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _healthy(self) -> bool:
        try:
            return httpx2.get(f"{self.base_url}/health", timeout=5).status_code == 200
        except httpx2.TransportError:
            return False

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20 * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
