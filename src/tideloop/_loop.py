"""EventLoop: the public loop class, assembled from its parts.

The loop is one class built as a single inheritance chain, each part adding
one area of the ``asyncio.AbstractEventLoop`` API on top of the parts below
it, and initialising its own state in its own ``__init__``:

=================  ===================  =======================================
part               module               what it adds
=================  ===================  =======================================
``ErrorsPart``     ``_errors``          exception handler API, error reports
``LoopCore``       ``_core``            lifecycle, run loop, call_soon/later,
                                        readers/writers, executor, debug
``ShutdownPart``   ``_shutdown``        shutdown_asyncgens,
                                        shutdown_default_executor (coroutines
                                        stay uncompiled)
``SignalsPart``    ``_signals``         add/remove_signal_handler, wakeup fd
``SockAPIPart``    ``_sock_api``        sock_recv, sock_sendall, ... sendfile
``NetPart``        ``_net``             getaddrinfo, create_connection/server,
                                        Unix sockets, sendfile, stream
                                        transports (one construction path)
``TLSPart``        ``_tls``             TLS transports, start_tls
``DatagramPart``   ``_datagram``        create_datagram_endpoint
``PipesPart``      ``_pipes``           connect_read_pipe/connect_write_pipe
``SubprocessPart`` ``_subprocess``      subprocess_exec/subprocess_shell
``EventLoop``      ``_loop``            the assembled loop
=================  ===================  =======================================

A part calls only what the parts below it define, plus the abstract methods
of ``asyncio.AbstractEventLoop``. Two exceptions, each declared once where it
is used: ``ErrorsPart`` reads two fields of ``LoopCore`` (annotated there),
and ``NetPart`` calls ``_make_ssl_transport``, which ``TLSPart`` provides
(asyncio's ``BaseEventLoop`` declares it the same way). Single inheritance
with typed fields is also what a compiler (mypyc, Cython) turns into native
classes.

Transports, servers and subprocesses do not see the loop's internals: they
use ``LoopIO`` (``_io``) and the loop's public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._subprocess import SubprocessPart

if TYPE_CHECKING:
    from ._clock import VirtualClock

__all__ = ["EventLoop", "new_event_loop"]


class EventLoop(SubprocessPart):
    """A complete asyncio event loop. Create it with ``tideloop.new_event_loop()``."""


def new_event_loop(
    *,
    backend: str | None = None,
    clock: VirtualClock | None = None,
    metrics: bool | None = None,
) -> EventLoop:
    """A new tideloop event loop; usable as ``loop_factory`` for asyncio.run/Runner.

    ``backend`` picks the I/O backend; ``clock`` (a :class:`VirtualClock`)
    runs the loop's timers in virtual time; ``metrics=True`` turns on
    ``loop.metrics()`` (default: the ``TIDELOOP_METRICS`` environment variable).
    """
    return EventLoop(backend=backend, clock=clock, metrics=metrics)
