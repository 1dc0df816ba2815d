"""The loop's ``create_datagram_endpoint`` (UDP and Unix datagram sockets):
argument checks, errors and messages as asyncio's, version by version. The
transport is ``tideloop._transports._datagram``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any, Final

from ._net import set_reuseport
from ._tls import TLSPart
from ._transports._datagram import DatagramTransport

# 3.12+ refuses a sock= already used by another transport (3.11 takes it).
_CHECK_FD_IN_USE: Final = sys.version_info >= (3, 12)
_PY313: Final = sys.version_info >= (3, 13)

logger = logging.getLogger("asyncio")


class DatagramPart(TLSPart):
    """``create_datagram_endpoint`` for ``EventLoop``."""

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
        """Create a datagram endpoint (asyncio's rules, messages and order)."""
        r_addr: Any = None
        own_sock = sock is None
        if sock is not None:
            if _PY313:
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
            elif sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (
                local_addr
                or remote_addr
                or family
                or proto
                or flags
                or reuse_port
                or allow_broadcast
            ):
                opts = {
                    "local_addr": local_addr,
                    "remote_addr": remote_addr,
                    "family": family,
                    "proto": proto,
                    "flags": flags,
                    "reuse_port": reuse_port,
                    "allow_broadcast": allow_broadcast,
                }
                problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
                raise ValueError(
                    "socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})"
                )
            sock.setblocking(False)
        else:
            pairs = await self._datagram_address_pairs(
                local_addr, remote_addr, family, proto, flags
            )
            sock, r_addr = await self._open_datagram_socket(
                pairs, local_addr, remote_addr, reuse_port, allow_broadcast
            )

        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            if _CHECK_FD_IN_USE:
                self._check_fd_no_transport(sock)
            transport = DatagramTransport(self._io, sock, protocol, r_addr, waiter)  # type: ignore[arg-type]
        except BaseException:
            # asyncio leaks the socket it made here; we close it (a socket
            # passed by the caller stays the caller's).
            if own_sock:
                sock.close()
            raise
        if self._debug:
            if local_addr:
                logger.info(
                    "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                    local_addr,
                    remote_addr,
                    transport,
                    protocol,
                )
            else:
                logger.debug(
                    "Datagram endpoint remote_addr=%r created: (%r, %r)",
                    remote_addr,
                    transport,
                    protocol,
                )
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_address_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list[tuple[tuple[int, int], list[Any]]]:
        """``[((family, proto), [local, remote]), ...]`` to try, in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), [None, None])]
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                # A socket file left by an earlier run: bind() would fail.
                try:
                    if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                        os.remove(local_addr)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    # The directory may only allow creating the socket.
                    logger.error(
                        "Unable to check or remove stale UNIX socket %r: %r", local_addr, err
                    )
            return [((family, proto), [local_addr, remote_addr])]
        # Join the resolved addresses by (family, proto), in resolver order.
        addr_infos: dict[tuple[int, int], list[Any]] = {}
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self._ensure_resolved(
                addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
            )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                addr_infos.setdefault((fam, pro), [None, None])[idx] = address
        # Each given address needs an answer for the (family, proto) pair.
        pairs = [
            (key, pair)
            for key, pair in addr_infos.items()
            if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open_datagram_socket(
        self,
        pairs: list[tuple[tuple[int, int], list[Any]]],
        local_addr: Any,
        remote_addr: Any,
        reuse_port: bool | None,
        allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        """The first socket that binds and connects; else the first error."""
        exceptions: list[OSError] = []
        for (fam, pro), (local_address, remote_address) in pairs:
            sock = None
            try:
                sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                if reuse_port:
                    set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                r_addr = None
                if remote_addr:
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote_address)
                    r_addr = remote_address
            except OSError as exc:
                if sock is not None:
                    sock.close()
                exceptions.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
            else:
                return sock, r_addr
        raise exceptions[0]

    def _check_fd_no_transport(self, sock: socket.socket) -> None:
        """asyncio's ``_ensure_fd_no_transport`` for a socket we are handed."""
        transport = self._io.transport_of(sock.fileno())
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {sock!r} is used by transport {transport!r}")
