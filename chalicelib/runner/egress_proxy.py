"""The per-run egress proxy: the sandbox's only way out (runs on the host, in the runner).

The container has no network interface. The runner starts one proxy per run
that was granted hosts, listening on a Unix socket in a per-run directory
that is bind-mounted into the container; the harness relays a loopback port
inside the container to it (``egress_relay.py``) and sets ``HTTP_PROXY`` /
``HTTPS_PROXY`` for the skill. Code that ignores those variables has nothing
to connect to.

Per connection the proxy reads one request head:

* ``CONNECT host:port`` (TLS): checked, then bytes are relayed untouched;
* ``GET http://host[:port]/path`` and the other methods in absolute form
  (plain HTTP): checked, forwarded in origin form with ``Connection: close``
  (one request per upstream connection, so a kept-alive connection cannot
  switch to a host that was not checked), proxy headers dropped, and the
  headers bound to that host added (brokered secrets that never enter the
  container).

Checks, in order: the run's connection cap, the host:port against the run's
approved patterns, then resolution: the proxy resolves the name itself and
connects to the address it checked (no second lookup, so no DNS rebinding);
any address that is not public unicast (private, loopback, link-local and the
cloud metadata endpoint, ...) is refused. ``resolve_overrides`` (the
``SKILLHARBOR_EGRESS_RESOLVE`` setting, loopback targets only) maps a
host:port to a local test server. Bytes (both ways, the whole run) are capped;
the proxy closes everything at its deadline. A refusal is an HTTP 403 whose
body names the host and says why. Every connection, allowed or not, is
recorded (``records``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.skills.network import HostPattern, non_public_reason, patterns_from_strings

log = logging.getLogger("skillharbor.egress")

SOCKET_NAME = "proxy.sock"
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
CHUNK = 64 * 1024
#: request headers never forwarded upstream (hop-by-hop, and the proxy's own)
_DROPPED_HEADERS = {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "te", "upgrade"}


@dataclass
class EgressLimits:
    max_bytes: int = 64 * 1024 * 1024  # both directions, every connection of the run
    max_connections: int = 64
    deadline_seconds: float = 60.0  # the run's timeout plus its startup grace


@dataclass
class ConnectionRecord:
    host: str
    port: int
    method: str
    allowed: bool
    reason: str
    address: str | None = None
    bytes_sent: int = 0  # container -> upstream
    bytes_received: int = 0  # upstream -> container

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_resolve_overrides(text: str | None) -> dict[tuple[str, int], tuple[str, int]]:
    """``host:port:address:port,...`` → {(host, port): (address, port)}; only loopback addresses are accepted."""
    overrides: dict[tuple[str, int], tuple[str, int]] = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            raise ValueError(f"SKILLHARBOR_EGRESS_RESOLVE entry {entry!r} must be host:port:address:port")
        try:
            address = ipaddress.ip_address(parts[2])
        except ValueError as exc:
            raise ValueError(f"SKILLHARBOR_EGRESS_RESOLVE entry {entry!r}: {parts[2]!r} is not an IP address") from exc
        if not address.is_loopback:
            raise ValueError(f"SKILLHARBOR_EGRESS_RESOLVE entry {entry!r}: only loopback targets are accepted (tests)")
        overrides[(parts[0].lower().rstrip("."), int(parts[1]))] = (str(address), int(parts[3]))
    return overrides


@dataclass
class _Budget:
    limits: EgressLimits
    used: int = 0
    connections: int = 0

    def take(self, size: int) -> bool:
        self.used += size
        return self.used <= self.limits.max_bytes


@dataclass
class EgressProxy:
    """One run's proxy. ``start()`` listens on ``<directory>/proxy.sock``; ``stop()`` ends every connection."""

    directory: str
    allowed: list[HostPattern]
    limits: EgressLimits = field(default_factory=EgressLimits)
    resolve_overrides: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    #: host pattern → headers added to plain-HTTP requests to it (brokered secrets)
    inject_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    records: list[ConnectionRecord] = field(default_factory=list)
    failure: str | None = None  # set when the proxy stopped before the run ended

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._budget = _Budget(self.limits)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()

    @classmethod
    def for_hosts(cls, directory: str, hosts: list[str], **kwargs: Any) -> EgressProxy:
        return cls(directory=directory, allowed=patterns_from_strings(hosts), **kwargs)

    @property
    def socket_path(self) -> str:
        return os.path.join(self.directory, SOCKET_NAME)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="egress-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10) or self._server is None:
            raise RuntimeError(f"the egress proxy did not start: {self.failure or 'timeout'}")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_unix_server(self._handle, path=self.socket_path))
            os.chmod(self.socket_path, 0o666)  # the container's supervisor (uid 10000) connects to it
            loop.call_later(self.limits.deadline_seconds, self._expire)
            self._started.set()
            loop.run_forever()
        except Exception as exc:  # noqa: BLE001 - reported to the run, never silent
            self.failure = f"{type(exc).__name__}: {exc}"
            self._started.set()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()

    def _expire(self) -> None:
        log.info("egress proxy deadline (%ss) reached; closing", self.limits.deadline_seconds)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        assert self._loop is not None
        self._loop.call_soon(self._loop.stop)

    def stop(self) -> list[dict[str, Any]]:
        """End the proxy (idempotent) and return the connection records."""
        with self._lock:
            if not self._stopped and self._loop is not None and self._loop.is_running():
                self._loop.call_soon_threadsafe(self._shutdown)
            self._stopped = True
        if self._thread is not None:
            self._thread.join(10)
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass
        return [record.to_dict() for record in self.records]

    def crash(self, reason: str) -> None:
        """Stop serving now, as a failed proxy would (tests, and the runner on an internal error)."""
        self.failure = reason
        self.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- one connection -------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle_one(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:  # noqa: BLE001 - one bad connection must not end the proxy
            log.exception("egress proxy connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        if len(head) > MAX_HEAD_BYTES:
            await _refuse(writer, 431, "request head too large")
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            await _refuse(writer, 400, "malformed request line")
            return
        parsed = _target(method, target)
        if parsed is None:
            await _refuse(writer, 400, f"{target!r} is not an absolute http:// URL or a CONNECT host:port")
            return
        host, port, path = parsed
        record = ConnectionRecord(host=host, port=port, method=method.upper(), allowed=False, reason="")
        self.records.append(record)
        refusal = self._check(host, port)
        address = None
        if refusal is None:
            address, refusal = await self._resolve(host, port)
        if refusal is not None or address is None:
            record.reason = refusal or "not resolved"
            await _refuse(writer, 403, f"{host}:{port} {record.reason}")
            return
        record.address = f"{address[0]}:{address[1]}"
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*address), CONNECT_TIMEOUT_SECONDS)
        except (OSError, asyncio.TimeoutError) as exc:
            record.reason = f"upstream unreachable: {exc or type(exc).__name__}"
            await _refuse(writer, 502, f"{host}:{port} {record.reason}")
            return
        record.allowed, record.reason = True, "approved"
        try:
            if method.upper() == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                forwarded = self._forward_head(method, path, version, lines[1:], host, port)
                if not self._budget.take(len(forwarded)):
                    record.reason = f"byte cap of {self.limits.max_bytes} bytes reached"
                    return
                record.bytes_sent += len(forwarded)
                up_writer.write(forwarded)
            await self._pump(reader, writer, up_reader, up_writer, record)
        finally:
            up_writer.close()

    def _check(self, host: str, port: int) -> str | None:
        self._budget.connections += 1
        if self._budget.connections > self.limits.max_connections:
            return f"refused: connection cap of {self.limits.max_connections} per run reached"
        if not any(pattern.matches(host, port) for pattern in self.allowed):
            return "is not approved for this skill"
        return None

    async def _resolve(self, host: str, port: int) -> tuple[tuple[str, int] | None, str | None]:
        override = self.resolve_overrides.get((host, port))
        if override is not None:
            return override, None
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            candidates = [str(literal)]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), CONNECT_TIMEOUT_SECONDS
                )
            except (OSError, asyncio.TimeoutError) as exc:
                return None, f"could not be resolved: {exc or type(exc).__name__}"
            candidates = [str(info[4][0]) for info in infos]
        refused = []
        for candidate in candidates:
            reason = non_public_reason(ipaddress.ip_address(candidate.split("%")[0]))
            if reason is None:
                return (candidate, port), None
            refused.append(f"{candidate} ({reason})")
        return None, "resolves only to addresses a sandbox may never reach: " + ", ".join(refused)

    def _forward_head(self, method: str, path: str, version: str, headers: list[str], host: str, port: int) -> bytes:
        kept = [line for line in headers if line and line.split(":", 1)[0].strip().lower() not in _DROPPED_HEADERS]
        for pattern, extra in self.inject_headers.items():
            if HostPattern(host=pattern, ports=(port,)).matches(host, port):
                names = {name.lower() for name in extra}
                kept = [line for line in kept if line.split(":", 1)[0].strip().lower() not in names]
                kept += [f"{name}: {value}" for name, value in extra.items()]
        return "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode("latin-1")

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter, record: ConnectionRecord,
    ) -> None:  # fmt: skip
        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter, outbound: bool) -> None:
            try:
                while True:
                    data = await source.read(CHUNK)
                    if not data:
                        break
                    if not self._budget.take(len(data)):
                        record.reason = f"approved; closed: byte cap of {self.limits.max_bytes} bytes per run reached"
                        break
                    if outbound:
                        record.bytes_sent += len(data)
                    else:
                        record.bytes_received += len(data)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if sink.can_write_eof() and not sink.is_closing():
                    try:
                        sink.write_eof()
                    except OSError:
                        pass

        tasks = [asyncio.ensure_future(copy(reader, up_writer, True)), asyncio.ensure_future(copy(up_reader, writer, False))]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if "byte cap" in record.reason:
                for task in pending:
                    task.cancel()
            elif pending:
                await asyncio.wait(pending)
        finally:
            for task in tasks:
                task.cancel()


def _target(method: str, target: str) -> tuple[str, int, str] | None:
    """(host, port, origin-form path) of a proxy request, or None."""
    if method.upper() == "CONNECT":
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        return (host.lower().rstrip("."), int(port), "") if host and port.isdigit() and 0 < int(port) < 65536 else None
    if not target.lower().startswith("http://"):
        return None
    rest = target[len("http://"):]
    authority, slash, path = rest.partition("/")
    if "@" in authority or not authority:
        return None
    host, port = authority, 80
    if authority.startswith("["):
        end = authority.find("]")
        host, tail = authority[1:end], authority[end + 1:]
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif ":" in authority:
        host, port_text = authority.rsplit(":", 1)
        if not port_text.isdigit():
            return None
        port = int(port_text)
    if not 0 < port < 65536:
        return None
    return host.lower().rstrip("."), port, slash + path if slash else "/"


async def _refuse(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    phrase = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 502: "Bad Gateway"}[status]
    body = f"skillharbor egress: {message}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n".encode() + body
    )
    try:
        await writer.drain()
    except ConnectionError:
        pass

