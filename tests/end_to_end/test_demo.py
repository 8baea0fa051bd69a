"""`parley demo` (what `make run` starts), run as a person would on a fresh store: the tour it
prints names pages that answer, users whose printed passwords sign in, and a phone that can
text the demo business through the sandbox broker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import TIMEOUT_SCALE, fresh_database_url
from tests.end_to_end.server_process import ROOT, free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running `parley demo`: (its base URL, what it printed before serving)."""
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_DATABASE_URL": fresh_database_url(folder),
        "PARLEY_MEDIA_DIR": str(folder / "media"),
        "PARLEY_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PARLEY_ENV", None)
    output = folder / "demo.log"
    command = [sys.executable, "-m", "server.cli", "demo", "--port", str(port)]
    with output.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60 * TIMEOUT_SCALE
        while True:
            assert process.poll() is None, output.read_text()
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
        yield base, output.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20 * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_tour_names_the_pages_the_users_and_a_first_tour(demo: tuple[str, str]) -> None:
    base, printed = demo
    for page in ("/agent", "/supervisor", "/admin", "/phone"):
        assert f"{base}{page}" in printed, page
    for who in ("alice (agent)", "bob (agent)", "carol (supervisor)", "dave (admin)"):
        assert who in printed
    tour = printed.split("First tour:", 1)[1].split("\n\n", 1)[0].strip().splitlines()
    assert [line.split(".", 1)[0].strip() for line in tour] == ["1", "2", "3", "4"]


def test_what_the_tour_names_answers(demo: tuple[str, str]) -> None:
    base, printed = demo
    [password] = re.findall(r"alice \(agent\)\s+password (\S+)", printed)
    with httpx2.Client(base_url=base, timeout=30 * TIMEOUT_SCALE) as http:
        assert http.get("/phone").status_code == 200
        numbers = http.get("/sandbox/numbers").json()["numbers"]
        assert {"number": "+19205550100", "name": "Support line"} in numbers
        signed_in = http.post(
            "/auth/login",
            json={"organisation": "demo", "username": "alice", "password": password},
        )
        assert signed_in.status_code == 200, signed_in.text
        assert http.get("/agent").status_code == 200
        texted = http.post(
            "/sandbox/phones/+14145550147/messages",
            json={"to": "+19205550100", "text": "Hi!"},
        )
        assert texted.status_code == 201, texted.text
