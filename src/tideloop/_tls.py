"""The loop's TLS entry points: ``start_tls``, ``_make_ssl_transport`` (the
``ssl=`` argument of create_connection/create_server and friends) and
``sendfile`` over TLS. The TLS layer itself is in ``_transports/_ssl.py``
and ``_transports/_sslproto.py``.

Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from ._net import NetPart
from ._transports._ssl import (
    SSL_HANDSHAKE_TIMEOUT_S,
    SSL_SHUTDOWN_TIMEOUT_S,
    SSLTransport,
)
from ._transports._sslproto import SSLProtocol


class TLSPart(NetPart):
    """``_make_ssl_transport``, ``start_tls`` and sendfile over TLS for ``EventLoop``."""

    def _make_ssl_transport(  # type: ignore[override]
        self,
        rawsock: Any,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext | None,
        waiter: asyncio.Future[Any] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT_S,
        ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT_S,
    ) -> SSLTransport:
        watch = waiter is None and server is not None and self._debug
        if watch:
            # asyncio's accept path awaits the handshake and, in debug mode,
            # reports a failed one; Server hands us no waiter, so watch here.
            waiter = self.create_future()
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            read_view=self._io.tls_read_view(),
        )
        transport = ssl_protocol._get_app_transport()
        if watch:
            assert waiter is not None
            waiter.add_done_callback(
                functools.partial(self._on_server_handshake_done, protocol, transport)
            )
        self._make_socket_transport(rawsock, ssl_protocol, None, extra=extra, server=server)
        return transport

    def _on_server_handshake_done(
        self, protocol: asyncio.BaseProtocol, transport: SSLTransport, waiter: asyncio.Future[Any]
    ) -> None:
        if waiter.cancelled() or waiter.exception() is None:
            return
        transport.close()
        self.call_exception_handler(
            {
                "message": "Error on transport creation for incoming connection",
                "exception": waiter.exception(),
                "protocol": protocol,
                "transport": transport,
            }
        )

    async def start_tls(  # type: ignore[override]
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport | None:
        """Upgrade ``transport`` to TLS; return the transport ``protocol`` uses now.

        As asyncio: None if the transport closed before the handshake began.
        """
        if ssl is None:  # pragma: no cover
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=False,
            read_view=self._io.tls_read_view(),
        )
        # Pause first, so that no data reaches the TLS protocol before its
        # connection_made().
        transport.pause_reading()  # type: ignore[attr-defined]
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport
