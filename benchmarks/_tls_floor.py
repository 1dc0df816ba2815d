"""``pyfloor`` of the TLS group: the least Python work per message a TLS echo server can do.

Not an event loop: a yardstick (``python -m benchmarks --group tls --loops
tideloop,uvloop,pyfloor``), the TLS counterpart of ``_floor_server``. TLS
runs over memory BIOs (``ssl.SSLContext.wrap_bio``), as in asyncio's and
tideloop's TLS layers, on blocking sockets polled with epoll. Per readable
connection: one ``recv_into`` into a preallocated buffer, the bytes into the
incoming BIO, then ``SSLObject.read`` per TLS record, each record's
plaintext to the benchmark's own ``Protocol.data_received``, whose
``transport.write`` encrypts (``SSLObject.write``); what the TLS object has
to send goes out in one ``sendall`` at the end of the event. The handshake
is ``do_handshake`` retried as bytes arrive; a peer's close_notify is
answered with ours (``unwrap``) and the connection closed. No handles,
contexts, buffering, flow control or state machine beyond that.

The reads stop without an ``SSLWantReadError`` when the incoming BIO and the
TLS object hold nothing more (an exception per message would be work a
server need not do).

Imports: standard library only; importable as a top-level module (the TLS
benchmark's children run ``tls`` that way).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final

__all__ = ["serve"]

RECV_BYTES: Final = 256 * 1024
#: The most plaintext one TLS record carries.
RECORD_BYTES: Final = 16384


class _TlsTransport:
    """A connection: its socket, TLS object and BIOs; ``write`` encrypts."""

    __slots__ = ("incoming", "outgoing", "ready", "sock", "sslobj")

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.ready = False  # handshake done

    def write(self, data: bytes) -> None:
        self.sslobj.write(data)

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def on_readable(self, protocol: Any, view: memoryview) -> bool:
        """Handle what arrived; False when the connection is to be closed."""
        nbytes = self.sock.recv_into(view)
        if not nbytes:
            return False
        self.incoming.write(view[:nbytes])
        sslobj = self.sslobj
        if not self.ready:
            try:
                sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                return True
            self.ready = True
        incoming = self.incoming
        while True:
            try:
                data = sslobj.read(RECORD_BYTES)
            except ssl.SSLWantReadError:
                break  # a partial record: the rest comes with the next event
            if not data:  # close_notify: answer it, then close
                try:
                    sslobj.unwrap()
                except ssl.SSLError:
                    pass
                self.flush()
                return False
            protocol.data_received(data)
            if not incoming.pending and not sslobj.pending():
                break
        self.flush()
        return True


def serve(
    ctx: ssl.SSLContext,
    host: str,
    port: int,
    backlog: int,
    factory: Callable[[], Any],
    listening: Callable[[int], None],
    start_control: Callable[[Callable[[], None]], None],
) -> tuple[int, list[str]]:
    """Serve until the control thread asks to stop.

    ``factory()`` makes a connection's protocol (its ``transport`` attribute
    is set to the connection); ``listening(port)`` announces the bound port;
    ``start_control(stop)`` starts the control thread, which calls ``stop()``
    from its own thread. Returns the connection count and the TLS errors seen
    (a reset or an EOF from a peer is no error: it closes the connection).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(backlog)
    listener.setblocking(False)
    stop_r, stop_w = os.pipe()

    def stop() -> None:
        os.write(stop_w, b"q")

    epoll = select.epoll()
    epoll.register(listener.fileno(), select.EPOLLIN)
    epoll.register(stop_r, select.EPOLLIN)
    listening(int(listener.getsockname()[1]))
    start_control(stop)

    view = memoryview(bytearray(RECV_BYTES))
    conns: dict[int, tuple[_TlsTransport, Any]] = {}
    listen_fd = listener.fileno()
    connections = 0
    errors: list[str] = []
    running = True
    try:
        while running:
            for fd, _mask in epoll.poll():
                conn = conns.get(fd)
                if conn is not None:
                    transport, protocol = conn
                    try:
                        if transport.on_readable(protocol, view):
                            continue
                    except ssl.SSLError as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    except OSError:
                        pass  # a reset: drop the connection
                    epoll.unregister(fd)
                    del conns[fd]
                    transport.sock.close()
                elif fd == listen_fd:
                    while True:
                        try:
                            sock, _addr = listener.accept()
                        except BlockingIOError:
                            break
                        sock.setblocking(True)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        transport = _TlsTransport(sock, ctx)
                        protocol = factory()
                        protocol.transport = transport
                        conns[sock.fileno()] = (transport, protocol)
                        epoll.register(sock.fileno(), select.EPOLLIN)
                        connections += 1
                elif fd == stop_r:
                    running = False
    finally:
        for transport, _protocol in conns.values():
            transport.sock.close()
        epoll.close()
        listener.close()
        os.close(stop_r)
        os.close(stop_w)
    return connections, errors
