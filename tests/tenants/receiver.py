"""A real webhook receiver on 127.0.0.1 for tests: records every request, answers from a script.

    receiver.script(500, 200)                   # the next two requests get 500, then 200
    receiver.script(Reply(429, headers={"Retry-After": "120"}))
    receiver.script(Reply(200, hold=True))      # keep the request open until release()
    receiver.routes["/down"] = Reply(500)       # every request to /down gets this, script or not
    receiver.wait_for(2)                        # the first two requests, waiting up to a timeout

``TricklingReceiver`` is a raw-socket server that sends its whole answer one byte at a time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering
    hold: bool = False  # answer only after Receiver.release() (or the receiver stops)


@dataclass
class Received:
    method: str
    path: str
    headers: dict  # lower-cased names
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = receiver._record(
            Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if reply.hold:
            receiver._released.wait(timeout=60)
        if reply.delay:
            receiver._released.wait(timeout=reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the sender gave up (timeout) or died

    do_PUT = do_GET = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a listen backlog like a real server's (Python's default is 5)
    block_on_close = False
    receiver: Receiver


class Receiver:
    def __init__(self, host: str = "127.0.0.1"):
        self._lock = threading.Condition()
        self._script: deque[Reply] = deque()
        self._released = threading.Event()
        self.requests: list[Received] = []
        self.default = Reply(200)
        self.routes: dict[str, Reply] = {}
        self._server = _Server((host, 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply | int) -> None:
        with self._lock:
            for reply in replies:
                self._script.append(reply if isinstance(reply, Reply) else Reply(reply))

    def _record(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.path in self.routes:
                reply = self.routes[request.path]
            else:
                reply = self._script.popleft() if self._script else self.default
            self._lock.notify_all()
            return reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
                self._lock.wait(left)
            return list(self.requests)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


class TricklingReceiver:
    """Reads a request, then answers ``200 ok`` one byte every ``interval`` seconds, status line
    and headers included: each read gets a byte long before a per-read timeout, the whole
    answer takes about ``interval`` × 70 bytes."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nX-Pace: slow\r\n\r\nok"

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                received = b""
                while b"\r\n\r\n" not in received:  # the request's head; its body is not needed
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    received += chunk
                for byte in self.ANSWER:
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the sender gave up

    def stop(self) -> None:
        self._stop.set()
        self._socket.close()
        self._thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
