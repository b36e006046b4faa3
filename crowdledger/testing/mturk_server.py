"""Serve a :class:`~tests.fakes.mturk.FakeMTurk` over HTTP on 127.0.0.1.

:meth:`FakeMTurk.attach` only answers clients in the *same* process.  Tests that run code in
another process (for example to kill it mid-way and check what survived) start a
:class:`FakeMTurkServer` and hand its :attr:`~FakeMTurkServer.url` to the child, which builds an
ordinary boto3 client with ``endpoint_url=url``::

    with FakeMTurkServer() as server:
        client = boto3.session.Session(
            aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
        ).client("mturk", endpoint_url=server.url)
        ...
        assert server.fake.worker_values(type_id) == {...}

Each POST is handed, with its headers (``X-Amz-Target``) and body, to the fake's request
handler under the fake's lock, exactly as an attached client's requests are; the fake's
status, headers and body go back on the wire.  So the client still sees botocore's real
error mapping (``RequestError`` with ``TurkErrorCode``, ``ServiceFault``), its retries of
throttling and 5xx answers, and its paginators.  Fault injection (``fail_next``/``fail_every``)
and the state inspection helpers work as usual on :attr:`FakeMTurkServer.fake`.

:meth:`FakeMTurkServer.hang` makes the server *silent*: matching requests are read and
never answered (nor passed to the fake) until :meth:`~FakeMTurkServer.release` or
:meth:`~FakeMTurkServer.stop`, so a client sees its read timeout, as with an endpoint
that accepts connections and then says nothing.

The fake picks the sandbox or production namespace from the request URL's host.  A server
has one namespace, chosen by ``sandbox``: requests are presented to the fake with the URL of
the real sandbox or production endpoint (plus the request path).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders

from .mturk import PRODUCTION_ENDPOINT, SANDBOX_ENDPOINT, FakeMTurk

__all__ = ["FakeMTurkServer"]

# Hop-by-hop or recomputed headers: never copied from the fake's response.
_SKIPPED_RESPONSE_HEADERS: Final = frozenset({"content-length", "connection", "transfer-encoding"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: FakeMTurkServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (about 40 ms per request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests do not want an access log on stderr."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        owner = self.server.owner
        operation = str(self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        silence = owner._silence_for(operation)
        if silence is not None:
            silence.wait()  # say nothing until released or stopped, then hang up
            self.close_connection = True
            return
        headers = HTTPHeaders.from_pairs(list(self.headers.items()))
        request = AWSPreparedRequest("POST", owner.endpoint + self.path, headers, body, False)
        try:
            with owner.fake._lock:
                response = owner.fake._handle(request)
            status = response.status_code
            content = response.content
            reply = [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in _SKIPPED_RESPONSE_HEADERS
            ]
        except Exception as error:  # a bug in the fake: answer rather than hang the client
            status = 500
            content = json.dumps(
                {"__type": "FakeMTurkServerError", "Message": f"{type(error).__name__}: {error}"}
            ).encode()
            reply = [("Content-Type", "application/x-amz-json-1.1")]
        self._reply(status, reply, content)

    def do_GET(self) -> None:
        self._reply(405, [("Allow", "POST"), ("Content-Type", "text/plain")], b"POST only\n")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class FakeMTurkServer:
    """Serves a FakeMTurk over HTTP on 127.0.0.1, so that a boto3 client in ANOTHER PROCESS
    can use it through ``endpoint_url`` (for tests that kill a process mid-way).

    ``sandbox`` decides which of the fake's namespaces the requests land in.  Several servers
    may share one fake (say one production and one sandbox server).
    """

    def __init__(self, fake: FakeMTurk | None = None, *, sandbox: bool = False) -> None:
        self.fake: FakeMTurk = fake if fake is not None else FakeMTurk()
        self.sandbox = sandbox
        # The URL the fake sees: its host decides the namespace.
        self.endpoint = SANDBOX_ENDPOINT if sandbox else PRODUCTION_ENDPOINT
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._hang_lock = threading.Lock()
        self._hang_operations: frozenset[str] | None = None
        self._hang_after: int | None = None  # None: answer everything
        self._released = threading.Event()
        self.unanswered = 0  # requests left without an answer so far

    def hang(self, *, operations: set[str] | None = None, after: int = 0) -> None:
        """Answer nothing to requests for ``operations`` (None: any), after letting the
        next ``after`` of them through, until :meth:`release` or :meth:`stop`."""
        if after < 0:
            raise ValueError("after must be >= 0")
        with self._hang_lock:
            self._released.set()  # requests held by an earlier hang() hang up now
            self._released = threading.Event()
            self._hang_operations = frozenset(operations) if operations is not None else None
            self._hang_after = after

    def release(self) -> None:
        """Answer again; requests held so far are hung up on (their clients gave up)."""
        with self._hang_lock:
            self._hang_after = None
            self._released.set()

    def _silence_for(self, operation: str) -> threading.Event | None:
        with self._hang_lock:
            if self._hang_after is None:
                return None
            if self._hang_operations is not None and operation not in self._hang_operations:
                return None
            if self._hang_after > 0:
                self._hang_after -= 1
                return None
            self.unanswered += 1
            return self._released

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``endpoint_url``; only while started."""
        if self._server is None:
            raise RuntimeError("FakeMTurkServer is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeMTurkServer:
        if self._server is not None:
            raise RuntimeError("FakeMTurkServer is already running")
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-mturk-server-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and drop open (keep-alive) connections; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        self.release()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeMTurkServer:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeMTurkServer {'sandbox' if self.sandbox else 'production'} {where}>"
