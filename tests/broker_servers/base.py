"""What every fake broker shares: uvicorn in a thread, the record of requests, scripted faults.

A broker server (`InteliquentServer`, `TwilioServer`, `BandwidthServer`) is a small Starlette
app served by a real uvicorn in a background thread, on a socket bound to a free loopback port
(bound and listening before the thread starts, so no port can be taken in between). Use it as a
context manager; point a client at `server.api_url`:

    with TwilioServer(account_sid=SID, auth_token=TOKEN) as twilio:
        twilio.fail_next(TwilioServer.error(21610))      # the next send is refused
        twilio.fail_next(Fault.slow(1.0), times=2)       # the two after answer a second late
        twilio.fail_next(Fault.held())                   # the next waits for release()
        ... send ...
        (sent,) = twilio.wait_for(1)                     # what it received, parsed

Every request to the broker's endpoint is recorded (`received()`, `wait_for(n)`), including the
refused ones, with the status the server answered and when it came (`received_at`, on
`time.monotonic()`). A queued fault replaces the broker's own handling of the next request:
`Answer` (answer this status and body), `Fault.slow(s)` (wait `s` seconds, cut short when the
server stops, then answer as the broker would) or `Fault.dropped()` (send the status line and
headers, then close the connection without a body). `Fault.held()` records the request, then
holds its answer until `release()` (or the server stops): a send in flight, counted by
`holding()`.

`WebhookCatcher` is the other side: a server that records whatever is posted to it (the
brokers' receipts) and answers 200, so a test can feed the bytes to Parley's own parsers.
"""

from __future__ import annotations

import base64
import binascii
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.conftest import TIMEOUT_SCALE

__all__ = [
    "WAIT_S",
    "Answer",
    "BrokerServer",
    "Fault",
    "Incoming",
    "Received",
    "RequestLog",
    "ThreadedServer",
    "WebhookCatcher",
]

WAIT_S = 10 * TIMEOUT_SCALE


@dataclass(frozen=True)
class Answer:
    """What a server answers: a status and a body; `message_id` when it accepted a text."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    message_id: str | None = None

    @classmethod
    def json(cls, status: int, payload: object, *, message_id: str | None = None) -> Answer:
        return cls(status, orjson.dumps(payload), message_id=message_id)


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request (see the module docstring)."""

    answer: Answer | None = None  # answer this instead of the broker's own answer
    delay_s: float = 0.0  # wait this long before answering (cut short when the server stops)
    drop: bool = False  # close the connection after the status line and headers
    hold: bool = False  # answer only once `release()` is called (or the server stops)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay_s=seconds)

    @classmethod
    def held(cls) -> Fault:
        return cls(hold=True)

    @classmethod
    def dropped(cls) -> Fault:
        return cls(drop=True)


@dataclass(frozen=True)
class Incoming:
    """A request as a broker server's `answer` sees it."""

    path_params: Mapping[str, str]
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    fields: Any  # the parsed body: a JSON value, or a form as {name: [values]}; None if unreadable


@dataclass(frozen=True)
class Received:
    """One request a server received, and what it answered (`status` None: dropped)."""

    method: str
    path: str
    url: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    fields: Any
    status: int | None = None
    message_id: str | None = None
    received_at: float = 0.0  # time.monotonic() when the request came (for rates)

    def basic_auth(self) -> tuple[str, str] | None:
        """The user name and password of a Basic `Authorization` header, else None."""
        return basic_credentials(self.headers.get("authorization", ""))

    def bearer(self) -> str | None:
        """The token of a Bearer `Authorization` header, else None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """Decode `Basic base64(user:password)`; None when the header is anything else."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


class RequestLog:
    """The requests a server received, in order; safe to read from the test's thread."""

    def __init__(self) -> None:
        self._records: list[Received] = []
        self._changed = threading.Condition()

    def add(self, record: Received) -> None:
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def snapshot(self) -> list[Received]:
        with self._changed:
            return list(self._records)

    def clear(self) -> None:
        with self._changed:
            self._records.clear()

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        """Wait until at least `count` requests have come; return them all. Raises
        AssertionError after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._records) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) within {timeout} s, "
                    f"got {len(self._records)}: {[r.path for r in self._records]}"
                )
            return list(self._records)


class _Uvicorn(uvicorn.Server):
    """uvicorn that says when its startup is over (whether it succeeded: see `started`)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_over = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_over.set()


class ThreadedServer:
    """An ASGI app on a real uvicorn in a background thread, on a free 127.0.0.1 port.

    `start()` returns once uvicorn listens; `stop()` sets `stopping` (so slow handlers return),
    asks uvicorn to exit and joins its thread. Also a context manager.
    """

    def __init__(self, app: Starlette) -> None:
        self.stopping = threading.Event()
        self.port = 0  # known once started
        config = uvicorn.Config(
            app, lifespan="off", access_log=False, log_config=None, log_level="warning"
        )
        self._server = _Uvicorn(config)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind a free port (listening at once, so nothing can take it), start uvicorn on it in
        a thread and return when it serves. Raises RuntimeError if it does not start."""
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port = int(self._socket.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not self._server.startup_over.wait(WAIT_S) or not self._server.started:
            self.stop()
            raise RuntimeError(f"{type(self).__name__} did not start")

    def stop(self) -> None:
        """Cut slow answers short, stop uvicorn and wait for its thread."""
        self.stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(WAIT_S)
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{type(self).__name__} did not stop in {WAIT_S} s")

    async def pause(self, seconds: float) -> None:
        """Wait `seconds` on the server's loop, returning early when the server stops."""
        await anyio.to_thread.run_sync(self.stopping.wait, seconds)

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Dropped(Response):
    """Sends the status line and headers, then ends: uvicorn closes a connection whose answer
    was not completed, so the client reads no body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


class BrokerServer(ThreadedServer):
    """The shared part of a fake broker: one endpoint (`ROUTE`, POST only, any other method is
    Starlette's 405), the request log and the fault queue.

    A subclass sets `ROUTE` (a Starlette path) and `API_PREFIX` (what `api_url` adds to the base
    URL), and implements `parse(headers, body)` (the body's fields) and `answer(incoming)`
    (the broker's own answer: its checks, its errors, its ids).
    """

    ROUTE = "/"
    API_PREFIX = ""

    def __init__(self) -> None:
        self.log = RequestLog()
        self._faults: deque[Fault] = deque()
        self._faults_lock = threading.Lock()
        self._released = threading.Event()
        self._holding = 0  # requests waiting for `release()`, under `_faults_lock`
        app = Starlette(routes=[Route(self.ROUTE, self._endpoint, methods=["POST"])])
        super().__init__(app)

    def __enter__(self) -> BrokerServer:
        self.start()
        return self

    @property
    def api_url(self) -> str:
        """The address to configure as the account's API URL."""
        return self.base_url + self.API_PREFIX

    # -- scripting ---------------------------------------------------------------------------

    def fail_next(self, fault: Fault | Answer, *, times: int = 1) -> None:
        """Misbehave on the next `times` requests (after any faults already queued)."""
        if isinstance(fault, Answer):
            fault = Fault(answer=fault)
        with self._faults_lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget the requests received and the faults not used yet; `Fault.held()` holds again
        (a request still held stays held until `release()` or `stop()`)."""
        with self._faults_lock:
            self._faults.clear()
        self._released.clear()
        self.log.clear()

    def release(self) -> None:
        """Answer the requests held by `Fault.held()`, and any later one until `reset()`."""
        self._released.set()

    def holding(self) -> int:
        """How many requests are held now: received and recorded, not yet answered."""
        with self._faults_lock:
            return self._holding

    def stop(self) -> None:
        """Release the held requests, then stop as any `ThreadedServer`."""
        self.release()
        super().stop()

    # -- reading -----------------------------------------------------------------------------

    def received(self) -> list[Received]:
        return self.log.snapshot()

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        """Wait until the server has received at least `count` requests; return them all."""
        return self.log.wait_for(count, timeout)

    # -- the broker's side, for subclasses ------------------------------------------------------

    def parse(self, headers: Mapping[str, str], body: bytes) -> Any:
        raise NotImplementedError

    def answer(self, incoming: Incoming) -> Answer:
        raise NotImplementedError

    # -- the endpoint ----------------------------------------------------------------------------

    def _next_fault(self) -> Fault | None:
        with self._faults_lock:
            return self._faults.popleft() if self._faults else None

    async def _endpoint(self, request: Request) -> Response:
        received_at = time.monotonic()
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        fields = self.parse(headers, body)
        fault = self._next_fault() or Fault()
        if fault.hold:
            with self._faults_lock:
                self._holding += 1  # counted before it is recorded: a reader sees both
        answer = None
        if not fault.drop:
            answer = fault.answer or self.answer(
                Incoming(path_params=request.path_params, headers=headers, body=body, fields=fields)
            )
        self.log.add(
            Received(
                method=request.method,
                path=request.url.path,
                url=str(request.url),
                headers=headers,
                body=body,
                fields=fields,
                status=answer.status if answer else None,
                message_id=answer.message_id if answer else None,
                received_at=received_at,
            )
        )
        if fault.delay_s:
            await self.pause(fault.delay_s)
        if fault.hold:
            await anyio.to_thread.run_sync(self._released.wait)
            with self._faults_lock:
                self._holding -= 1
        if answer is None:
            return _Dropped()
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


class WebhookCatcher(ThreadedServer):
    """Records every POST, on any path, and answers `status` (200) with an empty JSON object:
    the webhook a fake broker posts its receipts to."""

    def __init__(self, *, status: int = 200) -> None:
        self.log = RequestLog()
        self._status = status
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])])
        super().__init__(app)

    def __enter__(self) -> WebhookCatcher:
        self.start()
        return self

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[Received]:
        return self.log.wait_for(count, timeout)

    async def _endpoint(self, request: Request) -> Response:
        received_at = time.monotonic()
        body = await request.body()
        self.log.add(
            Received(
                method=request.method,
                path=request.url.path,
                url=str(request.url),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                fields=None,
                status=self._status,
                received_at=received_at,
            )
        )
        return Response(b"{}", status_code=self._status, media_type="application/json")
