"""``pyfloor`` of the UDP group: the least Python work per datagram an echo server can do.

Not an event loop: a yardstick (``python -m benchmarks --group udp --loops
tideloop,uvloop,pyfloor``), the datagram counterpart of ``_floor_server``.
One function polls epoll and, each time the socket is readable, does what a
Python server must do per datagram with asyncio's protocol API and nothing
more: one ``recvfrom_into`` into a preallocated buffer, a ``bytes`` copy of
what arrived for the benchmark's own ``DatagramProtocol.datagram_received``,
whose ``transport.sendto`` sends at once (``socket.sendto`` on a blocking
socket). No handles, contexts, queues or flow control; an error of
``sendto`` goes to ``error_received`` as asyncio would send it, so the
benchmark's check of that list holds here too.

One datagram per readiness event, as tideloop and stock asyncio read (epoll
is level-triggered: the next ``poll`` returns at once while datagrams wait);
uvloop reads up to 32 per event.

Imports: standard library only; importable as a top-level module (the server
runs that way: see ``_echo_server.SERVER_BOOTSTRAP``).
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable
from typing import Any, Final

__all__ = ["serve"]

#: The largest UDP payload over IPv4.
RECV_BYTES: Final = 65536


class _SendtoTransport:
    """The part of a datagram transport the echo protocol uses."""

    __slots__ = ("protocol", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.protocol: Any = None

    def sendto(self, data: bytes, addr: Any = None) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError as exc:  # ECONNREFUSED from an earlier ICMP error, ...
            self.protocol.error_received(exc)

    def get_write_buffer_size(self) -> int:
        return 0  # sendto() returns once the kernel has the datagram


def serve(
    host: str,
    port: int,
    protocol: Any,
    listening: Callable[[int], None],
    start_control: Callable[[Callable[[], None]], None],
) -> None:
    """Echo until the control thread asks to stop.

    ``protocol`` is a ``DatagramProtocol`` instance (its ``connection_made``
    gets the transport, its ``connection_lost(None)`` is called at the stop);
    ``listening(port)`` announces the bound port; ``start_control(stop)``
    starts the control thread, which calls ``stop()`` from its own thread.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    transport = _SendtoTransport(sock)
    transport.protocol = protocol
    protocol.connection_made(transport)
    stop_r, stop_w = os.pipe()

    def stop() -> None:
        os.write(stop_w, b"q")

    epoll = select.epoll()
    epoll.register(sock.fileno(), select.EPOLLIN)
    epoll.register(stop_r, select.EPOLLIN)
    listening(int(sock.getsockname()[1]))
    start_control(stop)

    buffer = bytearray(RECV_BYTES)
    view = memoryview(buffer)
    sock_fd = sock.fileno()
    datagram_received = protocol.datagram_received
    recvfrom_into = sock.recvfrom_into
    running = True
    try:
        while running:
            for fd, _mask in epoll.poll():
                if fd == sock_fd:
                    try:
                        nbytes, addr = recvfrom_into(buffer)
                    except OSError as exc:
                        protocol.error_received(exc)
                        continue
                    datagram_received(view[:nbytes].tobytes(), addr)
                elif fd == stop_r:
                    running = False
        protocol.connection_lost(None)
    finally:
        epoll.close()
        sock.close()
        os.close(stop_r)
        os.close(stop_w)
