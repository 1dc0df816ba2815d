"""Telling blockbuster which of tideloop's own blocking calls are the loop's.

blockbuster (PyPI) is a test-time guard: it replaces blocking functions
(``os.stat``, ``os.sendfile``, ``os.read``, ``time.sleep``, socket methods,
file reads, ...) with wrappers that raise ``BlockingError`` when called on a
thread that runs an event loop. Each wrapper first lets through calls that
cannot block (``os.read``/``os.write`` on a non-blocking descriptor, the
methods of a non-blocking socket), then calls made from the functions it is
told may block: a list of (file name suffix, function names), matched
against every frame of the stack. Its defaults name asyncio's own call
sites, which do what an event loop has to do on its thread:

- ``os.sendfile`` in ``asyncio/base_events.py:sendfile`` and
  ``asyncio/unix_events.py:_sock_sendfile_native_impl`` (``loop.sendfile``,
  ``loop.sock_sendfile``: a non-blocking socket, but the file is read from
  disk, and there is no non-blocking form of that);
- ``os.stat`` in ``asyncio/unix_events.py:create_unix_server`` and
  ``_stop_serving``, ``os.unlink`` in ``_stop_serving`` (a Unix server's
  stale socket file check, and its socket file's removal on close);
- ``os.read`` in ``asyncio/base_events.py:subprocess_exec`` and
  ``subprocess_shell`` (``subprocess.Popen`` reads the exec error pipe).

tideloop makes the same calls from its own functions, where there is no
non-blocking form either (its other I/O is on non-blocking descriptors and
sockets, which blockbuster lets through). ``allow_in_blockbuster()`` names
those functions, by their code objects, so that the list follows the code.

Must not import blockbuster: it is not a dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._net import NetPart
from ._server import Server
from ._sock_api import _SendfileJob
from ._subprocess import SubprocessPart


def _call_sites() -> dict[str, list[Callable[..., Any]]]:
    """blockbuster's function key -> tideloop's functions that call it as
    the loop's own work (the counterparts of asyncio's in blockbuster)."""
    return {
        "os.sendfile": [_SendfileJob.send_some],
        "os.stat": [NetPart.create_unix_server, Server._stop_serving],
        "os.unlink": [Server._stop_serving],
        "os.read": [SubprocessPart.subprocess_exec, SubprocessPart.subprocess_shell],
    }


def allow_in_blockbuster(blockbuster: Any) -> None:
    """Tell a ``blockbuster.BlockBuster`` instance that tideloop's own
    blocking calls are the event loop's, as its defaults say for asyncio's:
    ``os.sendfile`` in ``loop.sendfile()``/``sock_sendfile()``, ``os.stat``
    and ``os.unlink`` for a Unix server's socket file, ``os.read`` when a
    subprocess is started. Call it once per instance, active or not::

        with blockbuster.blockbuster_ctx() as bb:
            tideloop.allow_in_blockbuster(bb)
            ...

    Calls made by your code (or a library's) are still reported.
    """
    for key, functions in _call_sites().items():
        guarded = blockbuster.functions.get(key)
        if guarded is None:  # a blockbuster version that does not guard it
            continue
        for function in functions:
            code = function.__code__
            # blockbuster matches a frame whose file name ends with this one:
            # the full path matches exactly this file.
            guarded.can_block_in(code.co_filename, {code.co_name})
