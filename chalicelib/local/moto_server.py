"""The local stack's moto server, serving HTTP/1.1 keep-alive.

moto's own ``ThreadedMotoServer`` runs werkzeug's development server, which
answers every request with ``Connection: close`` (and then waits up to 10 ms
for leftover body bytes). Each boto3 call of the API and the worker so paid a
new TCP connection and a new server thread: about 4 ms of a 5 ms GetItem on
loopback, where the deployed stack reuses its HTTPS connections. This
handler keeps the connection open between requests, as AWS does:

* the request body is exactly what Content-Length (or the chunked encoding)
  declares; whatever the application left unread of it is read and dropped,
  never the start of the next request;
* the answer is buffered and sent with its Content-Length (moto builds every
  answer in memory anyway), so the client always knows where it ends;
* an error inside the application answers 500 and closes the connection.

``stop()`` also closes the connections clients hold open: a stopped server
must not go on answering on them.

The process that runs the server (the local stack's API, pollers and
pipeline functions) may also skip the socket: ``send`` is a botocore
``before-send`` handler that hands a request for this server to the same
application in the calling thread, as the server would, and its answer back
to botocore (signing, serialising and parsing stay as they are). The runner
worker, a process of its own, still comes over HTTP.
``SKILLHARBOR_LOCAL_AWS_IN_PROCESS=0`` sends everything over HTTP.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import urllib.parse
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import DechunkedInput, ThreadedWSGIServer

from chalicelib.local.moto_dispatch import CachingDispatcherApplication, cache_action_lookup

#: answers that carry no body whatever their headers say (RFC 9112 6.3)
_NO_BODY = {204, 304}


class _BodyReader:
    """The request body as the application sees it: at most ``length`` bytes of the connection."""

    def __init__(self, stream: Any, length: int):
        self.stream, self.left = stream, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.stream.read(size)
        self.left -= len(data)
        if len(data) < size:
            self.left = 0  # the client stopped sending: nothing more will come
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.stream.readline(size)
        self.left -= len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self.left > 0 and self.read(min(self.left, 1 << 20)):
            pass


class KeepAliveHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body = self._body(environ)
        if body is None:
            return
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks = answer.get("written", []) + [bytes(chunk) for chunk in result]
            finally:
                if hasattr(result, "close"):
                    result.close()
            body.drain()
        except Exception:  # the body and the answer are in an unknown state: answer 500 and end the connection
            self.log_error("moto failed on %s %s", self.command, self.path)
            self._send(500, [("Content-Type", "text/plain")], b"internal error in the local moto server", close=True)
            return
        code = int(str(answer.get("status", "500")).split(None, 1)[0])
        self._send(code, answer.get("headers", []), b"".join(chunks), close=self.close_connection)

    def _body(self, environ: dict[str, Any]) -> Any:
        """The reader of exactly this request's body (None once a 400 has been answered)."""
        if isinstance(environ["wsgi.input"], DechunkedInput):
            reader: Any = _Dechunked(environ["wsgi.input"])
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(400, [("Content-Type", "text/plain")], b"bad Content-Length", close=True)
                return None
            reader = _BodyReader(self.rfile, length)
        environ["wsgi.input"] = reader
        return reader

    def _send(self, code: int, headers: list[tuple[str, str]], payload: bytes, *, close: bool) -> None:
        self.close_connection = close
        self.send_response(code)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        declared = next((v for k, v in headers if k.lower() == "content-length"), None)
        if self.command == "HEAD":
            if declared is not None:
                self.send_header("Content-Length", declared)  # the size of what a GET would answer
            payload = b""
        elif code in _NO_BODY or 100 <= code < 200:
            payload = b""
        else:
            self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
        # the head and the body in one write: two small writes meet Nagle and the client's delayed ACK (40 ms)
        self._headers_buffer.extend((b"\r\n", payload))
        self.flush_headers()


class _Dechunked:
    """werkzeug's DechunkedInput, drained to its last chunk after the application."""

    def __init__(self, stream: DechunkedInput):
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        return self.stream.read() if size is None or size < 0 else self.stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self.stream.readline(size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self.stream.read(1 << 20):
            pass


class KeepAliveWSGIServer(ThreadedWSGIServer):
    """A threaded WSGI server that knows its open connections, to close them when it stops."""

    def __init__(self, host: str, port: int, app: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(host, port, app, handler=KeepAliveHandler)

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked on its next request line
            except OSError:
                pass


class KeepAliveMotoServer:
    """``ThreadedMotoServer``'s interface (start, stop, get_host_and_port) on the keep-alive server."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 5000):
        self._address = (ip_address, port)
        self._server: KeepAliveWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        cache_action_lookup()
        self._server = KeepAliveWSGIServer(self._address[0], self._address[1], CachingDispatcherApplication(create_backend_app))
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def in_process(self) -> bool:
        """Whether this process's own AWS calls skip the socket (SKILLHARBOR_LOCAL_AWS_IN_PROCESS, on by default)."""
        return os.environ.get("SKILLHARBOR_LOCAL_AWS_IN_PROCESS", "1") not in ("0", "false", "no", "off")

    def send(self, request: Any, **_: Any) -> Any:
        """botocore's ``before-send``: a request for this server answered by its application in this thread, as
        the server would answer it, with no socket or HTTP parsing in between; None (send it over HTTP) for any
        other endpoint or once stopped."""
        server = self._server
        if server is None or urllib.parse.urlsplit(request.url).netloc not in self._netlocs:
            return None
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        try:
            result = server.app(wsgi_environ(request, *self._address), start_response)
            try:
                body = b"".join(answer.get("written", []) + [bytes(chunk) for chunk in result])
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:  # as over HTTP: a 500 that botocore retries and then reports, not moto's traceback
            self._log_failure(request)
            answer = {"status": "500", "headers": [("Content-Type", "text/plain")]}
            body = b"internal error in the local moto server"
        headers = {key: value for key, value in answer["headers"]}
        return AWSResponse(request.url, int(str(answer["status"]).split(None, 1)[0]), headers, MockRawResponse(body))

    @staticmethod
    def _log_failure(request: Any) -> None:
        import logging

        logging.getLogger("skillharbor.local.moto").exception("moto failed on %s %s", request.method, request.url)

    @property
    def _netlocs(self) -> set[str]:
        """The addresses that name this server (moto's state machine calls it ``localhost:<port>``)."""
        host, port = self._address
        names = {f"{host}:{port}"}
        if host in ("127.0.0.1", "0.0.0.0", "localhost"):
            names |= {f"127.0.0.1:{port}", f"localhost:{port}"}
        return names

    def stop(self) -> None:
        server, self._server = self._server, None  # send() answers nothing from here on
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()


def wsgi_environ(request: Any, server_name: str, server_port: int) -> dict[str, Any]:
    """The WSGI environ the server would make of a botocore request (the request as it would go on the wire)."""
    url = urllib.parse.urlsplit(request.url)
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:  # a file-like body (an upload): botocore rewinds it itself before a retry
        data = body.read()
        data = data.encode("utf-8") if isinstance(data, str) else data
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0), "wsgi.url_scheme": url.scheme or "http", "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "SERVER_SOFTWARE": "skillharbor-local", "REQUEST_METHOD": request.method, "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote(url.path or "/", "latin-1"), "QUERY_STRING": url.query,
        "REQUEST_URI": request.url, "RAW_URI": request.url, "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": 0,
        "SERVER_NAME": server_name, "SERVER_PORT": str(server_port), "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": url.netloc, "CONTENT_LENGTH": str(len(data)),
    }  # fmt: skip
    for name, value in request.headers.items():
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING", "HOST"):
            continue  # the whole body is here: its length is known
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = value
    return environ
