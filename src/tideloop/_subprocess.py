"""Subprocesses: ``loop.subprocess_exec``/``subprocess_shell`` and their transport.

Semantics are asyncio's ``BaseSubprocessTransport`` on Unix, version by
version: the same argument checks and messages, the same callbacks in the same
order, the same private ``_wait()`` that ``asyncio.subprocess.Process.wait()``
calls. The child is spawned with ``subprocess.Popen`` (looked up at call time,
so tests that patch ``subprocess.Popen`` see their patch), with the caller's
``pass_fds``/``close_fds``/``env``/... passed through as asyncio does.

Callback order (what asyncio guarantees and we keep):
- ``connection_made`` runs after every pipe transport is connected and before
  ``subprocess_exec()`` returns; pipe events that happen earlier are queued
  and replayed after it;
- ``pipe_data_received(fd)`` events of one fd come before its
  ``pipe_connection_lost(fd)``; ``process_exited`` may come before or after
  the pipe events (it depends on when the OS reports each);
- ``connection_lost`` comes last, once the child has exited AND every pipe is
  closed; ``_wait()`` futures resolve right after it (or at once when the
  return code is already known).

Watching the child (no asyncio child watchers; this is CPython 3.14's design):
- **pidfd** (Linux 5.3+, ``pidfd_open(2)``): the pidfd becomes readable when
  the child exits. It is registered with the loop as a reader; the callback
  reaps with ``waitpid(pid, WNOHANG)`` on the loop thread. Signals go through
  ``pidfd_send_signal(2)`` while the pidfd is open, which cannot hit a
  recycled pid.
- **a waiter thread** per child elsewhere: it blocks in
  ``waitid(P_PID, pid, WEXITED | WNOWAIT)``, which sees the exit *without*
  reaping, and hands over to the loop thread, which reaps with the same code
  as the pidfd path. Reaping on the loop thread means a ``Popen.poll()`` made
  by ``transport.close()`` cannot race a thread's ``waitpid`` (asyncio's
  threaded watcher then reports 255).
A child that someone else reaped (``transport.get_extra_info('subprocess')
.wait()``) is reported with the return code the ``Popen`` object read, else
with asyncio's 255 and asyncio's warning.

The loop closing while a child runs: the pidfd is closed and a daemon thread
reaps the child later, logging asyncio's threaded-watcher warning.

Pipe transports: the child's stdin/stdout/stderr are connected through
``loop.connect_write_pipe``/``connect_read_pipe`` (``_transports/_pipes.py``),
the public methods looked up on the instance as asyncio does, so tests can
wrap them (test_subprocess's test_pause_reading does).

Must not import ``_loop`` at run time (it imports this module).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from typing import IO, Any

from ._pipes import PipesPart
from ._transports._subprocess import (
    SubprocessTransport,
    _format_pipe,
)

logger = logging.getLogger("asyncio")

# ---------------------------------------------------------------------------
# The loop side
# ---------------------------------------------------------------------------


def _check_popen_options(
    universal_newlines: bool,
    shell: bool,
    shell_expected: bool,
    bufsize: int,
    text: bool | None,
    encoding: str | None,
    errors: str | None,
) -> None:
    """The Popen options asyncio refuses, with its messages, in its order."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bool(shell) is not shell_expected:
        raise ValueError(f"shell must be {shell_expected}")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class SubprocessPart(PipesPart):
    """``subprocess_exec``/``subprocess_shell`` for :class:`EventLoop`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Transports whose child is not reaped yet (insertion ordered).
        self._subprocess_children: dict[SubprocessTransport, None] = {}

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
        info = [msg]
        if stdin is not None:
            info.append(f"stdin={_format_pipe(stdin)}")
        if stdout is not None and stderr == subprocess.STDOUT:
            info.append(f"stdout=stderr={_format_pipe(stdout)}")
        else:
            if stdout is not None:
                info.append(f"stdout={_format_pipe(stdout)}")
            if stderr is not None:
                info.append(f"stderr={_format_pipe(stderr)}")
        logger.debug(" ".join(info))

    async def subprocess_shell(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        cmd: bytes | str,
        *,
        stdin: int | IO[Any] | None = subprocess.PIPE,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_popen_options(universal_newlines, shell, True, bufsize, text, encoding, errors)
        debug_log = f"run shell command {cmd!r}" if self._debug else None
        return await self._start_subprocess(
            protocol_factory, cmd, True, debug_log, stdin, stdout, stderr, bufsize, kwargs
        )

    async def subprocess_exec(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        program: Any,
        *args: Any,
        stdin: int | IO[Any] | None = subprocess.PIPE,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        _check_popen_options(universal_newlines, shell, False, bufsize, text, encoding, errors)
        debug_log = f"execute program {program!r}" if self._debug else None
        return await self._start_subprocess(
            protocol_factory,
            (program, *args),
            False,
            debug_log,
            stdin,
            stdout,
            stderr,
            bufsize,
            kwargs,
        )

    async def _start_subprocess(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        popen_args: Any,
        shell: bool,
        debug_log: str | None,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        kwargs: dict[str, Any],
    ) -> tuple[SubprocessTransport, asyncio.BaseProtocol]:
        """What subprocess_shell and subprocess_exec share once their checks
        pass. ``debug_log`` (debug mode only) names the command, as asyncio
        does: never its arguments, which may hold secrets."""
        protocol = protocol_factory()
        if debug_log is not None:
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, popen_args, shell, stdin, stdout, stderr, bufsize, **kwargs
        )
        if self._debug and debug_log is not None:
            logger.info("%s: %r", debug_log, transport)
        return transport, protocol

    async def _make_subprocess_transport(
        self,
        protocol: asyncio.BaseProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        waiter = self.create_future()
        children = self._subprocess_children
        transp = SubprocessTransport(
            self._io,
            children,
            protocol,
            args,
            shell,
            stdin,
            stdout,
            stderr,
            bufsize,
            waiter=waiter,
            extra=extra,
            **kwargs,
        )
        children[transp] = None
        transp._start_watching()
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def close(self) -> None:
        if not self.is_running():
            self._close_subprocesses()
        super().close()

    def _close_subprocesses(self) -> None:
        """Loop close: hand still-running children to reaper threads.
        Idempotent."""
        children = self._subprocess_children
        while children:
            transp, _ = children.popitem()
            transp._abandon_watch()


