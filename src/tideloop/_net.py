"""Name resolution, connections and servers.

``NetMixin`` gives ``EventLoop`` create_connection (with Happy Eyeballs),
create_server, the Unix variants, connect_accepted_socket and sendfile, with
asyncio's argument checks and messages.

Name resolution:

``loop.getaddrinfo`` is answered on the loop thread when the host is an IP
address literal (``answers_inline``): then ``socket.getaddrinfo`` does no lookup at
all (it parses the literal), so calling it directly returns exactly what the
executor would, without a thread hop. Anything that could consult the
resolver, /etc/services or the interface list (names, service-name ports,
AI_ADDRCONFIG, scoped IPv6 addresses) returns None and goes to the executor as
in asyncio.
"""

from __future__ import annotations

import asyncio
import asyncio.transports
import collections.abc
import errno
import itertools
import logging
import os
import socket
import stat
import sys
from asyncio.constants import _SendfileMode
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._server import Server, unique_infos
from ._sock_api import SockAPIPart
from ._sock_api import _check_sendfile_params as check_sendfile_params
from ._sock_api import _ipaddr_info as ipaddr_info
from ._transports._base import WriteFlowControl
from ._transports._ssl import SSLTransport
from ._transports._stream import StreamTransport, stream_transport_class

if TYPE_CHECKING:
    from ._server import MakeTransport

try:
    import ssl
except ImportError:  # pragma: no cover
    ssl = None  # type: ignore[assignment]

logger = logging.getLogger("asyncio")
# asyncio removes a Unix server's socket file when the server closes from
# Python 3.13 on (create_unix_server(cleanup_socket=True)); 3.11 and 3.12
# leave it. tideloop follows the running Python by default, and takes
# cleanup_socket= on every version.
CLEANUP_UNIX_SOCKET_DEFAULT: Final = sys.version_info >= (3, 13)
_HAS_ALL_ERRORS: Final = sys.version_info >= (3, 12)
# 3.12+ refuses to make a transport on an fd another live transport owns.
_CHECK_FD_IN_USE: Final = sys.version_info >= (3, 12)
# 3.13 changed create_server's bind errors: str(exc) text, EADDRNOTAVAIL skipped.
_BIND_ERROR_STR: Final = sys.version_info >= (3, 13)

_SAFE_FLAGS: Final = (
    socket.AI_NUMERICHOST | socket.AI_NUMERICSERV | socket.AI_PASSIVE | socket.AI_CANONNAME
)


def _is_ip_literal(host: str) -> bool:
    if "%" in host:
        return False  # scope ids may need an interface lookup
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


def _is_numeric_port(port: Any) -> bool:
    if port is None or type(port) is int:
        return True
    if isinstance(port, (str, bytes)):
        return port.isdigit()
    return False


def answers_inline(host: Any, port: Any, flags: int) -> bool:
    """Whether ``socket.getaddrinfo`` can answer without blocking: the host is
    an IP literal, the port numeric, and no flag asks for a lookup."""
    return (
        isinstance(host, str)
        and _is_numeric_port(port)
        and not flags & ~_SAFE_FLAGS
        and _is_ip_literal(host)
    )


# -- connections and servers -------------------------------------------------


def interleave_addrinfos(addrinfos: list[Any], first_family_count: int = 1) -> list[Any]:
    """Reorder addresses alternating by family (RFC 8305 section 4)."""
    by_family: dict[int, list[Any]] = {}
    for info in addrinfos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    reordered: list[Any] = []
    if first_family_count > 1:
        reordered.extend(lists[0][: first_family_count - 1])
        del lists[0][: first_family_count - 1]
    reordered.extend(
        a for a in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if a is not None
    )
    return reordered


def check_ssl_socket(sock: Any) -> None:
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        )


# What asyncio's fallback accepts (its _FlowControlMixin transports: it
# reads _protocol_paused), plus tideloop's own transports with the same.
_FLOW_CONTROLLED_TRANSPORTS: Final = (
    asyncio.transports._FlowControlMixin,
    WriteFlowControl,
    SSLTransport,
)


def _is_flow_controlled(transport: Any) -> bool:
    return isinstance(transport, _FLOW_CONTROLLED_TRANSPORTS)


class _SendfileFallbackProtocol(asyncio.Protocol):
    """Stands in for the user's protocol while loop.sendfile() writes chunks,
    so the fallback can wait on the transport's write flow control."""

    def __init__(self, transport: Any) -> None:
        if not _is_flow_controlled(transport):
            raise TypeError("transport should be _FlowControlMixin instance")
        self._transport = transport
        self._proto = transport.get_protocol()
        self._should_resume_reading = transport.is_reading()
        self._should_resume_writing = transport._protocol_paused
        transport.pause_reading()
        transport.set_protocol(self)
        self._write_ready_fut: asyncio.Future[None] | None = None
        if self._should_resume_writing:
            self._write_ready_fut = transport._loop.create_future()

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        fut = self._write_ready_fut
        if fut is None:
            return
        await fut

    def connection_made(self, transport: Any) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._write_ready_fut is not None:
            if exc is None:
                self._write_ready_fut.set_exception(ConnectionError("Connection is closed by peer"))
            else:
                self._write_ready_fut.set_exception(exc)
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ready_fut is not None:
            return
        self._write_ready_fut = self._transport._loop.create_future()

    def resume_writing(self) -> None:
        if self._write_ready_fut is None:
            return
        self._write_ready_fut.set_result(None)
        self._write_ready_fut = None

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool:
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._write_ready_fut is not None:
            self._write_ready_fut.cancel()
        if self._should_resume_writing:
            self._proto.resume_writing()


def _bind_error_text(exc: OSError) -> str:
    # 3.13 switched the bind error text from strerror to str(exc).
    if _BIND_ERROR_STR:
        return str(exc).lower()
    return (exc.strerror or str(exc)).lower()


class NetPart(SockAPIPart):
    """create_connection/create_server and friends for ``EventLoop``."""

    async def _ensure_resolved(
        self,
        address: Any,
        *,
        family: int = 0,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        host, port = address[:2]
        info = ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        return await self.getaddrinfo(
            host, port, family=family, type=type, proto=proto, flags=flags
        )

    async def _connect_sock(
        self, exceptions: list[list[OSError]], addr_info: Any, local_addr_infos: Any = None
    ) -> socket.socket:
        my_exceptions: list[OSError] = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = (
                            f"error while attempting to bind on "
                            f"address {laddr!r}: {_bind_error_text(exc)}"
                        )
                        my_exceptions.append(OSError(exc.errno, msg))
                else:
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with {family=} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def _happy_eyeballs(
        self,
        infos: list[Any],
        laddr_infos: Any,
        delay: float,
        exceptions: list[list[OSError]],
    ) -> socket.socket | None:
        """Staggered connection attempts (RFC 8305): start the next address
        when the previous attempt fails or after ``delay`` seconds; the first
        connected socket wins and the other attempts are cancelled."""
        pending: set[asyncio.Task[socket.socket]] = set()
        winner: socket.socket | None = None
        index = 0
        try:
            while winner is None:
                if index < len(infos):
                    pending.add(
                        self.create_task(self._connect_sock(exceptions, infos[index], laddr_infos))
                    )
                    index += 1
                if not pending:
                    return None
                done, pending = await asyncio.wait(
                    pending,
                    timeout=delay if index < len(infos) else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    if task.cancelled() or task.exception() is not None:
                        continue
                    if winner is None:
                        winner = task.result()
                    else:
                        task.result().close()
            return winner
        finally:
            for task in pending:
                task.cancel()
            if pending:
                results = await asyncio.gather(*pending, return_exceptions=True)
                for result in results:
                    if isinstance(result, socket.socket):
                        result.close()

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await self._ensure_resolved(
                (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            laddr_infos = None
            if local_addr is not None:
                laddr_infos = await self._ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
                )
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            if interleave:
                infos = interleave_addrinfos(infos, interleave)
            exceptions: list[list[OSError]] = []
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        sock = await self._connect_sock(exceptions, addrinfo, laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                sock = await self._happy_eyeballs(
                    infos, laddr_infos, happy_eyeballs_delay, exceptions
                )
            if sock is None:
                flat = [exc for sub in exceptions for exc in sub]
                if all_errors and _HAS_ALL_ERRORS:
                    raise ExceptionGroup("create_connection failed", flat)
                if len(flat) == 1:
                    raise flat[0]
                model = str(flat[0])
                if all(str(exc) == model for exc in flat):
                    raise flat[0]
                raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in flat)))
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        transport, protocol = await self._create_connection_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if self._debug:
            logger.debug(
                "%r connected to %s:%r: (%r, %r)",
                transport.get_extra_info("socket"),
                host,
                port,
                transport,
                protocol,
            )
        return transport, protocol

    async def _create_connection_transport(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl: Any,
        server_hostname: str | None,
        server_side: bool = False,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport: Any
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._make_ssl_transport(
                sock,
                protocol,
                sslcontext,
                waiter,
                server_side=server_side,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- name resolution ----------------------------------------------------------

    def _getaddrinfo_debug(
        self, host: Any, port: Any, family: int, type: int, proto: int, flags: int
    ) -> list[Any]:
        msg_parts = [f"{host}:{port!r}"]
        if family:
            msg_parts.append(f"family={family!r}")
        if type:
            msg_parts.append(f"type={type!r}")
        if proto:
            msg_parts.append(f"proto={proto!r}")
        if flags:
            msg_parts.append(f"flags={flags!r}")
        msg = ", ".join(msg_parts)
        logger.debug("Get address info %s", msg)
        t0 = self.time()
        addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
        dt = self.time() - t0
        msg = f"Getting address info {msg} took {dt * 1e3:.3f}ms: {addrinfo!r}"
        if dt >= self.slow_callback_duration:
            logger.info(msg)
        else:
            logger.debug(msg)
        return addrinfo

    async def getaddrinfo(  # type: ignore[override]
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if self._debug:
            return await self.run_in_executor(
                None, self._getaddrinfo_debug, host, port, family, type, proto, flags
            )
        # Numeric hosts need no resolver: answer on the loop thread, with
        # exactly what socket.getaddrinfo returns (see _net), after the
        # checks run_in_executor would make.
        self._check_closed()
        self._check_default_executor()
        if answers_inline(host, port, flags):
            # Suspend once, as the executor round trip would: the caller can
            # still be cancelled or time out here.
            await asyncio.sleep(0)
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    def _make_ssl_transport(
        self,
        rawsock: Any,
        protocol: asyncio.BaseProtocol,
        sslcontext: Any,
        waiter: asyncio.Future[Any] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """A TLS transport over ``rawsock``: provided by ``TLSPart``, the part
        above this one (declared here, as asyncio's BaseEventLoop does)."""
        raise NotImplementedError

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> StreamTransport:
        if _CHECK_FD_IN_USE:
            self._ensure_fd_no_transport(sock)
        return stream_transport_class(sock)(self._io, sock, protocol, waiter, extra, server)

    def _server_transport_maker(
        self,
        ssl_context: Any,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> MakeTransport:
        """What a Server calls to give an accepted socket its transport."""
        if not ssl_context:

            def make_plain(
                conn: socket.socket,
                protocol: asyncio.BaseProtocol,
                extra: dict[str, Any],
                server: Server,
            ) -> object:
                return self._make_socket_transport(conn, protocol, None, extra=extra, server=server)

            return make_plain

        def make_tls(
            conn: socket.socket,
            protocol: asyncio.BaseProtocol,
            extra: dict[str, Any],
            server: Server,
        ) -> object:
            return self._make_ssl_transport(
                conn,
                protocol,
                ssl_context,
                server_side=True,
                extra=extra,
                server=server,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )

        return make_tls

    async def create_unix_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: Any = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def _create_server_getaddrinfo(
        self, host: Any, port: Any, family: int, flags: int
    ) -> list[Any]:
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, flags=flags
        )
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets: list[socket.socket] = []
            if host == "":
                hosts: Any = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = host
            fs = [
                self._create_server_getaddrinfo(h, port, family=family, flags=flags) for h in hosts
            ]
            infos_lists = await asyncio.gather(*fs)
            infos = unique_infos(itertools.chain.from_iterable(infos_lists))
            completed = False
            try:
                for af, socktype, proto, _canonname, sa in infos:
                    try:
                        sock = socket.socket(af, socktype, proto)
                    except OSError:
                        if self._debug:
                            logger.warning(
                                "create_server() failed to create socket.socket(%r, %r, %r)",
                                af,
                                socktype,
                                proto,
                                exc_info=True,
                            )
                        continue
                    sockets.append(sock)
                    if reuse_address:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                    if reuse_port:
                        set_reuseport(sock)
                    if keep_alive:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                    if af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                    try:
                        sock.bind(sa)
                    except OSError as err:
                        detail = _bind_error_text(err)
                        msg = f"error while attempting to bind on address {sa!r}: {detail}"
                        if err.errno == errno.EADDRNOTAVAIL and _BIND_ERROR_STR:
                            # 3.13+: assume the family is not enabled (bpo-30945).
                            sockets.pop()
                            sock.close()
                            if self._debug:
                                logger.warning(msg)
                            continue
                        raise OSError(err.errno, msg) from None
                if not sockets:
                    raise OSError(
                        f"could not bind on any address out of {[info[4] for info in infos]!r}"
                    )
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(
            self._io,
            sockets,
            protocol_factory,
            self._server_transport_maker(ssl, ssl_handshake_timeout, ssl_shutdown_timeout),
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        if self._debug:
            logger.info("%r is serving", server)
        return server

    async def create_unix_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = CLEANUP_UNIX_SOCKET_DEFAULT,
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):  # not an abstract socket
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        unix_inodes: dict[socket.socket, int] = {}
        if cleanup_socket:
            name = sock.getsockname()
            if name and name[0] not in (0, "\x00"):
                try:
                    unix_inodes[sock] = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = Server(
            self._io,
            [sock],
            protocol_factory,
            self._server_transport_maker(ssl, ssl_handshake_timeout, ssl_shutdown_timeout),
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            unix_inodes,
        )
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    def _stop_serving(self, sock: socket.socket) -> None:
        """asyncio's name, which code and CPython's tests call: stop watching a
        listening socket and close it. (A Server closes its own sockets and
        removes its Unix socket file itself: ``Server._stop_serving``.)"""
        self._remove_reader(sock.fileno())
        sock.close()

    async def connect_accepted_socket(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            check_ssl_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock,
            protocol_factory,
            ssl,
            "",
            server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if self._debug:
            logger.debug(
                "%r handled: (%r, %r)", transport.get_extra_info("socket"), transport, protocol
            )
        return transport, protocol

    # -- loop.sendfile -----------------------------------------------------------

    async def sendfile(  # type: ignore[override]
        self,
        transport: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        if isinstance(transport, StreamTransport):
            # Send what was gathered first: asyncio's write() has already
            # done so, and a failed send has made the transport closing.
            transport.get_write_buffer_size()
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        # asyncio's rules, for any transport (tideloop's own, a wrapper, a
        # third-party one): the transport's _sendfile_compatible says whether
        # to try os.sendfile, go straight to the read-and-write fallback, or
        # refuse; without the attribute, sendfile is not supported.
        mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(
                f"fallback is disabled and native sendfile is not "
                f"supported for transport {transport!r}"
            )
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        # asyncio's selector loop: needs a socket transport's _sock_fd,
        # _sock and empty waiter (tideloop's, or a wrapper that has them).
        check_sendfile_params(transp._sock, file, offset, count)
        self._io.detach(transp._sock_fd)
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await self.sock_sendfile(transp._sock, file, offset, count, fallback=False)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            self._io.attach(transp._sock_fd, transp)

    async def _sendfile_fallback(
        self, transp: Any, file: Any, offset: int, count: int | None
    ) -> int:
        if offset:
            file.seek(offset)
        blocksize = min(count, 16384) if count else 16384
        buf = bytearray(blocksize)
        total_sent = 0
        proto = _SendfileFallbackProtocol(transp)
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    return total_sent
                await proto.drain()
                transp.write(view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            await proto.restore()
