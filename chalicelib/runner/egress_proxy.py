"""The per-run egress proxy: the sandbox's only way out (runs on the host, in the runner).

The container has no network interface. The runner starts one proxy per run
that was granted hosts, listening on a Unix socket in a per-run directory
that is bind-mounted into the container; the harness relays a loopback port
inside the container to it (``egress_relay.py``) and sets ``HTTP_PROXY`` /
``HTTPS_PROXY`` for the skill. Code that ignores those variables has nothing
to connect to.

Per connection the proxy reads one request head:

* ``CONNECT host:port`` (TLS): checked, then bytes are relayed untouched,
  unless a secret is bound in ``inject`` mode to that host:port: then the
  proxy terminates TLS with a certificate from the run's own CA
  (``egress_tls.py``), reads the request inside, and forwards it over its own
  verified TLS connection to the real host with the secret's header added;
* ``GET http://host[:port]/path`` and the other methods in absolute form
  (plain HTTP): checked, forwarded in origin form.

Either way a forwarded request is one request per upstream connection
(``egress_http.py``: the proxy's ``Host``, proxy and hop-by-hop headers
dropped, bound headers added, ``Connection: close``), so a kept-alive
connection cannot switch to a host that was not checked, and its record
holds the method, the path (never the query) and the response status.

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
import ssl
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.runner.egress_http import (
    HeaderInjection, forward_head, path_only, proxy_target, refusal, response_head, split_head,
)  # fmt: skip
from chalicelib.skills.network import HostPattern, non_public_reason, patterns_from_strings

log = logging.getLogger("skillharbor.egress")

SOCKET_NAME = "proxy.sock"
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
CHUNK = 64 * 1024


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
    #: "tunnel": CONNECT relayed untouched; "terminated": TLS ended at the proxy (a secret is injected); None: plain HTTP
    tls: str | None = None
    #: the forwarded request (plain HTTP and terminated TLS): its path without the query, and the response status
    path: str | None = None
    status: int | None = None
    #: names (never values) of the headers the proxy added: brokered secrets
    injected: list[str] = field(default_factory=list)

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
    #: headers added to requests to their hosts (secrets bound in inject mode); for TLS they need ``authority``
    injections: list[HeaderInjection] = field(default_factory=list)
    #: the run's CA (egress_tls.RunAuthority): present when a secret is injected; terminates TLS to bound hosts only
    authority: Any = None
    #: the trust store for upstream TLS the proxy opens itself (None: the system's)
    upstream_cafile: str | None = None
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
        self._upstream_tls: ssl.SSLContext | None = None

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
        head = await self._read_head(reader, writer)
        request = split_head(head) if head else None
        if request is None:
            if head:
                await _refuse(writer, 400, "malformed request line")
            return
        method, target, version, headers = request
        method = method.upper()
        parsed = proxy_target(method, target)
        if parsed is None:
            await _refuse(writer, 400, f"{target!r} is not an absolute http:// URL or a CONNECT host:port")
            return
        host, port, path = parsed
        record = ConnectionRecord(host=host, port=port, method=method, allowed=False, reason="")
        self.records.append(record)
        refusal_reason = self._check(host, port)
        address = None
        if refusal_reason is None:
            address, refusal_reason = await self._resolve(host, port)
        if refusal_reason is not None or address is None:
            record.reason = refusal_reason or "not resolved"
            await _refuse(writer, 403, f"{host}:{port} {record.reason}")
            return
        record.address = f"{address[0]}:{address[1]}"
        injections = [i for i in self.injections if i.applies(host, port)]
        if method == "CONNECT" and injections and self.authority is not None:
            await self._terminate(reader, writer, host, port, address, record, injections)
            return
        upstream = await self._open(writer, host, port, address, record, tls=False)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            if method == "CONNECT":
                record.tls = "tunnel"
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await self._pump(reader, writer, up_reader, up_writer, record)
            else:
                record.path = path_only(path)
                forwarded = forward_head(method, path, version, headers, host, port, default_port=80, injections=injections)
                await self._forward(forwarded, reader, writer, up_reader, up_writer, record, injections)
        finally:
            up_writer.close()

    async def _read_head(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None
        if len(head) > MAX_HEAD_BYTES:
            await _refuse(writer, 431, "request head too large")
            return None
        return head

    async def _open(self, writer: asyncio.StreamWriter, host: str, port: int, address: tuple[str, int], record: ConnectionRecord,
                    *, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:  # fmt: skip
        """The upstream connection to the checked address (TLS: verified against the upstream trust store), or None after
        answering the skill with a 502 that says why."""
        options: dict[str, Any] = {}
        if tls:
            if self._upstream_tls is None:
                from chalicelib.runner.egress_tls import upstream_context

                self._upstream_tls = upstream_context(self.upstream_cafile)
            options = {"ssl": self._upstream_tls, "server_hostname": host}
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*address, **options), CONNECT_TIMEOUT_SECONDS)
        except ssl.SSLCertVerificationError as exc:
            record.reason = f"upstream certificate failed verification: {exc.verify_message or exc.reason}"
        except (OSError, asyncio.TimeoutError) as exc:
            record.reason = f"upstream unreachable: {exc or type(exc).__name__}"
        else:
            record.allowed, record.reason = True, "approved"
            return upstream
        await _refuse(writer, 502, f"{host}:{port} {record.reason}")
        return None

    async def _terminate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int,
                         address: tuple[str, int], record: ConnectionRecord, injections: list[HeaderInjection]) -> None:  # fmt: skip
        """TLS ended here with the run's CA, one request read inside, forwarded over verified TLS with the secret added."""
        record.tls = "terminated"
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.wait_for(writer.start_tls(self.authority.server_context(host)), HEAD_TIMEOUT_SECONDS)
        except (ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
            record.allowed = True
            record.reason = f"approved; the skill's TLS handshake with the proxy failed: {exc or type(exc).__name__}"
            return
        head = await self._read_head(reader, writer)
        request = split_head(head) if head else None
        if request is None or not request[1].startswith("/"):
            record.allowed, record.reason = True, "approved; no HTTP/1.1 request in origin form inside the TLS connection"
            if head:
                await _refuse(writer, 400, "the proxy reads one HTTP/1.1 request in origin form inside TLS to this host")
            return
        method, path, version, headers = request
        record.method, record.path = method.upper(), path_only(path)
        upstream = await self._open(writer, host, port, address, record, tls=True)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            forwarded = forward_head(method, path, version, headers, host, port, default_port=443, injections=injections)
            await self._forward(forwarded, reader, writer, up_reader, up_writer, record, injections)
        finally:
            up_writer.close()

    async def _forward(self, forwarded: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter, record: ConnectionRecord,
                       injections: list[HeaderInjection]) -> None:  # fmt: skip
        if not self._budget.take(len(forwarded)):
            record.reason = f"byte cap of {self.limits.max_bytes} bytes reached"
            return
        record.bytes_sent += len(forwarded)
        record.injected = [injection.name for injection in injections]
        up_writer.write(forwarded)
        await self._pump(reader, writer, up_reader, up_writer, record, http=True)

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

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter, record: ConnectionRecord, http: bool = False,
    ) -> None:  # fmt: skip
        """Relay both ways, counting and capping bytes. ``http``: the response head is read (status) and rewritten
        (``Connection: close``), and the connection ends with the response, as the proxy forwards one request."""

        def passed(data: bytes, outbound: bool) -> bool:
            if not self._budget.take(len(data)):
                record.reason = f"approved; closed: byte cap of {self.limits.max_bytes} bytes per run reached"
                return False
            if outbound:
                record.bytes_sent += len(data)
            else:
                record.bytes_received += len(data)
            return True

        async def response_heads(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> bool:
            while True:  # interim 1xx heads first, then the final one
                try:
                    head = await source.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    head = exc.partial  # the upstream ended early: pass on what there is
                except asyncio.LimitOverrunError:
                    return True  # not a head the proxy can read: relayed as it is
                status, head = response_head(head)
                if status is not None and (record.status is None or record.status < 200):
                    record.status = status
                if not head or not passed(head, False):
                    return bool(head)
                sink.write(head)
                await sink.drain()
                if status is None or not 100 <= status < 200:
                    return True

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter, outbound: bool) -> None:
            try:
                if http and not outbound and not await response_heads(source, sink):
                    return
                while True:
                    data = await source.read(CHUNK)
                    if not data or not passed(data, outbound):
                        break
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

        outbound = asyncio.ensure_future(copy(reader, up_writer, True))
        inbound = asyncio.ensure_future(copy(up_reader, writer, False))
        try:
            done, pending = await asyncio.wait([outbound, inbound], return_when=asyncio.FIRST_COMPLETED)
            # the cap ends both ways; so does the end of a forwarded response (a TLS stream to the skill has no half-close)
            if "byte cap" in record.reason or (http and inbound in done):
                for task in pending:
                    task.cancel()
            elif pending:
                await asyncio.wait(pending)
        finally:
            for task in (outbound, inbound):
                task.cancel()


async def _refuse(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    writer.write(refusal(status, message))
    try:
        await writer.drain()
    except ConnectionError:
        pass
