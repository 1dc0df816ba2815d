"""``pyfloor``: the least Python work per message a stream server can do.

Not an event loop, and nothing a program should use: a yardstick for the
stream benchmark (``python -m benchmarks --loops tideloop,uvloop,pyfloor``). One
function polls epoll and, for each readable connection, does what a Python
server must do per message with asyncio's protocol API and nothing more:
``recv_into``, hand the handler's protocol its data (``data_received`` with a
``bytes`` copy, or ``get_buffer``/``buffer_updated``), and send what the
protocol writes, at once, from a ``write`` method (so ``get_write_buffer_size``
is always 0 and the zero-copy handler always reuses its buffer). No handles,
no contexts,
no buffering, no flow control, no error reporting; accepted sockets are
blocking, so a reply the kernel cannot take at once simply waits.

The handlers are the benchmark's own protocol classes; ``streams`` gets the
plain ``protocol`` echo (the streams machinery is asyncio's code, not the
loop's), and ``split`` sends its two writes as two sends, so it is no floor
for a loop that gathers them.

What tideloop costs above this server is the price of asyncio's semantics in
Python; what this server costs above uvloop is the price of running Python
at all, which no event loop written in Python can get back.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["serve"]

RECV_BYTES = 256 * 1024


class _SendingTransport:
    """The part of a transport the handlers use: ``write`` sends at once (blocking)."""

    __slots__ = ("closed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False

    def write(self, data: bytes | memoryview) -> None:
        self.sock.sendall(data)

    def get_write_buffer_size(self) -> int:
        return 0  # write() returns once the kernel has every byte

    def close(self) -> None:
        self.closed = True


def serve(
    handler: str,
    host: str,
    port: int,
    backlog: int,
    factories: Mapping[str, Callable[[], Any]],
    listening: Callable[[int], None],
    start_control: Callable[[Callable[[], None]], None],
) -> int:
    """Serve until the control thread asks to stop; returns the connection count.

    ``factories`` maps handler names to protocol classes. ``listening(port)``
    announces the bound port; ``start_control(stop)`` starts the control
    thread, which calls ``stop()`` from its own thread to end the loop.
    """
    factory = factories["protocol" if handler == "streams" else handler]
    buffered = handler in ("buffered", "buffered-zero-copy")
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

    buffer = bytearray(RECV_BYTES)
    view = memoryview(buffer)
    conns: dict[int, tuple[socket.socket, Any, _SendingTransport]] = {}
    listen_fd = listener.fileno()
    connections = 0
    running = True
    try:
        while running:
            for fd, _mask in epoll.poll():
                conn = conns.get(fd)
                if conn is not None:
                    sock, protocol, transport = conn
                    try:
                        if buffered:
                            nbytes = sock.recv_into(protocol.get_buffer(-1))
                            if nbytes:
                                protocol.buffer_updated(nbytes)
                        else:
                            nbytes = sock.recv_into(buffer)
                            if nbytes:
                                protocol.data_received(view[:nbytes].tobytes())
                        if nbytes and not transport.closed:
                            continue
                    except OSError:
                        pass
                    # EOF, a reset, or the protocol closed: drop the connection.
                    epoll.unregister(fd)
                    del conns[fd]
                    sock.close()
                elif fd == listen_fd:
                    while True:
                        try:
                            sock, _addr = listener.accept()
                        except BlockingIOError:
                            break
                        sock.setblocking(True)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        transport = _SendingTransport(sock)
                        protocol = factory()
                        protocol.transport = transport
                        conns[sock.fileno()] = (sock, protocol, transport)
                        epoll.register(sock.fileno(), select.EPOLLIN)
                        connections += 1
                elif fd == stop_r:
                    running = False
    finally:
        for sock, _protocol, _transport in conns.values():
            sock.close()
        epoll.close()
        listener.close()
        os.close(stop_r)
        os.close(stop_w)
    return connections
