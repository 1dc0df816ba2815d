"""The subprocess transport: a child process with its pipes (asyncio's
``BaseSubprocessTransport`` semantics), how its exit is watched (a pidfd where
the kernel has them, else a waiter thread), and the pipe protocols joining the
child's pipes to it. The loop side (``subprocess_exec``/``subprocess_shell``)
is ``tideloop._subprocess``. Must not import the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .._io import LoopIO

logger = logging.getLogger("asyncio")

# 3.11's default child watcher (ThreadedChildWatcher) reports an exit with
# call_soon_threadsafe(call_soon, ...): one more iteration than 3.12+'s pidfd
# watcher (call_soon_threadsafe(...) from the reader callback).
_EXIT_EXTRA_HOP: Final = sys.version_info < (3, 12)
# 3.12+ also ignores PermissionError when close() kills the child (setuid).
_KILL_IGNORES: Final[tuple[type[OSError], ...]] = (
    (ProcessLookupError,) if sys.version_info < (3, 12) else (ProcessLookupError, PermissionError)
)

_WAITED_ELSEWHERE_PIDFD: Final = (
    "child process pid %d exit status already read:  will report returncode 255"
)
_WAITED_ELSEWHERE_THREAD: Final = "Unknown child process pid %d, will report returncode 255"

_HAVE_WAITID: Final = hasattr(os, "waitid")

_pidfd_usable: bool | None = None


def pidfd_usable() -> bool:
    """Whether pidfd_open(2) works here (asyncio's can_use_pidfd(), cached)."""
    global _pidfd_usable
    if _pidfd_usable is None:
        usable = hasattr(os, "pidfd_open")
        if usable:
            try:
                os.close(os.pidfd_open(os.getpid(), 0))
            except OSError:  # ENOSYS, or blocked by a seccomp policy
                usable = False
        _pidfd_usable = usable
    return _pidfd_usable


def _format_pipe(fd: Any) -> str:
    if fd == subprocess.PIPE:
        return "<pipe>"
    if fd == subprocess.STDOUT:
        return "<stdout>"
    return repr(fd)


# ---------------------------------------------------------------------------
# The subprocess transport
# ---------------------------------------------------------------------------


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process with its pipes; asyncio's BaseSubprocessTransport semantics."""

    # No __slots__ (DESIGN.md 5a): tests patch transport instances.
    _extra: dict[str, Any]

    def __init__(
        self,
        io: LoopIO,
        children: dict[SubprocessTransport, None],
        protocol: asyncio.BaseProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(extra)
        self._closed = False
        self._protocol: Any = protocol
        loop = io.loop
        self._loop: Any = loop
        self._io = io
        # The loop's children not reaped yet; we leave it once reaped.
        self._children = children
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._returncode: int | None = None
        self._exit_waiters: list[asyncio.Future[int]] | None = []
        self._pending_calls: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] | None
        self._pending_calls = collections.deque()
        self._pipes: dict[int, _PipeProtocol | None] = {}
        self._finished = False
        # Child watch: the pidfd while registered, or the waiter thread.
        self._pidfd = -1
        self._reaped = False

        if stdin == subprocess.PIPE:
            self._pipes[0] = None
        if stdout == subprocess.PIPE:
            self._pipes[1] = None
        if stderr == subprocess.PIPE:
            self._pipes[2] = None

        try:
            self._proc = subprocess.Popen(
                args,
                shell=shell,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                universal_newlines=False,
                bufsize=bufsize,
                **kwargs,
            )
        except:  # asyncio closes on anything, then re-raises
            self.close()
            raise

        self._pid = self._proc.pid
        self._extra["subprocess"] = self._proc
        if loop.get_debug():
            program = args if isinstance(args, (bytes, str)) else args[0]
            logger.debug("process %r created: pid %s", program, self._pid)
        loop.create_task(self._connect_pipes(waiter))

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        else:
            info.append("not started")
        stdin = self._pipes.get(0)
        if stdin is not None:
            info.append(f"stdin={stdin.pipe}")
        stdout = self._pipes.get(1)
        stderr = self._pipes.get(2)
        if stdout is not None and stderr is stdout:
            info.append(f"stdout=stderr={stdout.pipe}")
        else:
            if stdout is not None:
                info.append(f"stdout={stdout.pipe}")
            if stderr is not None:
                info.append(f"stderr={stderr.pipe}")
        return "<{}>".format(" ".join(info))

    # -- BaseTransport -------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for proto in self._pipes.values():
            if proto is None:
                continue
            assert proto.pipe is not None
            proto.pipe.close()
        if (
            self._proc is not None
            # exited, and we know it
            and self._returncode is None
            # exited (maybe reaped by the Popen object), and we don't know yet
            and self._proc.poll() is None
        ):
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                self._proc.kill()
            except _KILL_IGNORES:
                # already gone, or running setuid
                pass
            # Keep _proc: _connect_pipes() may still be running.

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    # -- SubprocessTransport -------------------------------------------------------

    def get_pid(self) -> int:
        return self._pid  # type: ignore[return-value]

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        if fd in self._pipes:
            return self._pipes[fd].pipe  # type: ignore[union-attr]
        return None

    def _check_proc(self) -> None:
        if self._proc is None:
            raise ProcessLookupError()

    def send_signal(self, signal: int) -> None:
        self._check_proc()
        assert self._proc is not None
        if self._pidfd >= 0:
            # Race-free: a pidfd names this process, never a recycled pid.
            try:
                _pidfd_send_signal(self._pidfd, signal)
            except ProcessLookupError:
                pass
            return
        if self._reaped or self._proc.returncode is not None:
            # Reaped already: the pid may belong to another process by now.
            # (asyncio 3.12+ calls os.kill anyway and ignores ESRCH; 3.11's
            # Popen.send_signal skips the kill, as we do.)
            return
        try:
            os.kill(self._proc.pid, signal)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    # -- pipes -----------------------------------------------------------------

    async def _connect_pipes(self, waiter: asyncio.Future[None] | None) -> None:
        try:
            proc = self._proc
            assert proc is not None
            loop = self._loop
            if proc.stdin is not None:
                _, pipe = await loop.connect_write_pipe(
                    lambda: _WritePipeProtocol(self, 0), proc.stdin
                )
                self._pipes[0] = pipe
            if proc.stdout is not None:
                _, pipe = await loop.connect_read_pipe(
                    lambda: _ReadPipeProtocol(self, 1), proc.stdout
                )
                self._pipes[1] = pipe
            if proc.stderr is not None:
                _, pipe = await loop.connect_read_pipe(
                    lambda: _ReadPipeProtocol(self, 2), proc.stderr
                )
                self._pipes[2] = pipe

            assert self._pending_calls is not None
            loop.call_soon(self._protocol.connection_made, self)
            for callback, data in self._pending_calls:
                loop.call_soon(callback, *data)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    def _call(self, cb: Callable[..., object], *data: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    # -- the child's exit ---------------------------------------------------------

    def _start_watching(self) -> None:
        """Watch for the child's exit: a pidfd if the kernel has them, else a thread."""
        if pidfd_usable():
            try:
                pidfd = os.pidfd_open(self._pid)  # type: ignore[arg-type]
            except OSError:
                pass  # EMFILE and friends: a thread does not need an fd
            else:
                self._pidfd = pidfd
                self._io.start_reading(pidfd, self._on_child_exit)
                return
        self._start_waiter_thread()

    def _start_waiter_thread(self) -> None:
        threading.Thread(
            target=_wait_in_thread,
            args=(self._loop, self._pid, self),
            name=f"tideloop-waitpid-{self._pid}",
            daemon=True,
        ).start()

    def _release_pidfd(self) -> None:
        pidfd = self._pidfd
        if pidfd >= 0:
            self._pidfd = -1
            self._io.stop_reading(pidfd)  # nothing to do once the loop is closed
            os.close(pidfd)
            self._io.fd_released()

    def _on_child_exit(self) -> None:
        """The child exited (pidfd readable, or told by the waiter thread): reap it."""
        if self._reaped:
            return
        pid = self._pid
        assert pid is not None and self._proc is not None
        # Log what asyncio's default watcher of this Python would log: the
        # threaded one on 3.11 (or without pidfds), else the pidfd one.
        threaded_texts = _EXIT_EXTRA_HOP or self._pidfd < 0
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            # Reaped elsewhere. Through our Popen object (a poll() from
            # close(), the user's proc.wait()): it knows the code. Else
            # asyncio's answer.
            returncode = self._proc.returncode
            if returncode is None:
                returncode = 255
                logger.warning(
                    _WAITED_ELSEWHERE_THREAD if threaded_texts else _WAITED_ELSEWHERE_PIDFD, pid
                )
        else:
            if wpid == 0:
                return  # not exited after all; keep watching
            returncode = os.waitstatus_to_exitcode(status)
            if self._proc.returncode is None:
                # Tell the Popen object at once: a poll() before
                # _process_exited() runs would otherwise make up 0 (ECHILD).
                self._proc.returncode = returncode
            if threaded_texts and self._loop.get_debug():
                logger.debug("process %s exited with returncode %s", pid, returncode)
        self._reaped = True
        self._release_pidfd()
        loop = self._loop
        self._children.pop(self, None)
        if _EXIT_EXTRA_HOP:
            loop.call_soon(loop.call_soon, self._process_exited, returncode)
        else:
            loop.call_soon(self._process_exited, returncode)

    def _abandon_watch(self) -> None:
        """The loop is closing with the child running: reap it from a thread."""
        if self._reaped:
            return
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
            self._start_waiter_thread()
        # A waiter thread already running sees the closed loop by itself.

    def _process_exited(self, returncode: int) -> None:
        assert returncode is not None, returncode
        assert self._returncode is None, self._returncode
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        assert self._proc is not None
        if self._proc.returncode is None:
            self._proc.returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    async def _wait(self) -> int:
        """Wait for the child's exit; its return code (asyncio.subprocess uses this)."""
        if self._returncode is not None:
            return self._returncode
        waiter: asyncio.Future[int] = self._loop.create_future()
        assert self._exit_waiters is not None
        self._exit_waiters.append(waiter)
        return await waiter

    def _try_finish(self) -> None:
        assert not self._finished
        if self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            assert self._exit_waiters is not None
            for waiter in self._exit_waiters:
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)  # type: ignore[arg-type]
            self._exit_waiters = None
            self._loop = None
            self._proc = None
            self._protocol = None


def _pidfd_send_signal(pidfd: int, sig: int) -> None:
    # A function: send_signal()'s parameter is named `signal`, as asyncio's.
    signal.pidfd_send_signal(pidfd, sig)


def _wait_in_thread(loop: Any, pid: int, transp: SubprocessTransport) -> None:
    """Waiter thread: block until the child exits, then let the loop reap it.

    ``WNOWAIT`` leaves the child a zombie, so the loop thread reaps it (and
    the pid cannot be recycled meanwhile). If the loop is gone, reap here.
    """
    status: int | None = None  # set when this thread reaped the child
    try:
        if _HAVE_WAITID:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                raise
            except OSError:  # unexpected: wait the classic way
                status = os.waitpid(pid, 0)[1]
        else:  # pragma: no cover - no waitid(2)
            status = os.waitpid(pid, 0)[1]
    except ChildProcessError:
        pass  # reaped elsewhere: the loop thread's waitpid reports it
    if status is not None:
        _record_exit(transp, status)
    if not loop.is_closed():
        try:
            loop.call_soon_threadsafe(transp._on_child_exit)
            return
        except RuntimeError:  # closed meanwhile
            pass
    logger.warning("Loop %r that handles pid %r is closed", loop, pid)
    if status is None:
        try:
            status = os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return
        _record_exit(transp, status)


def _record_exit(transp: SubprocessTransport, status: int) -> None:
    """Give the Popen object the exit code (else its __del__ warns "still running")."""
    proc = transp._proc
    if proc is not None and proc.returncode is None:
        proc.returncode = os.waitstatus_to_exitcode(status)


# ---------------------------------------------------------------------------
# Pipe protocols: connect the child's pipes to the subprocess transport
# ---------------------------------------------------------------------------


class _PipeProtocol(asyncio.BaseProtocol):
    """asyncio's WriteSubprocessPipeProto: one pipe of one child."""

    def __init__(self, proc: SubprocessTransport, fd: int) -> None:
        self.proc: SubprocessTransport | None = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pipe = transport

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        assert self.proc is not None
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None

    def pause_writing(self) -> None:
        self.proc._protocol.pause_writing()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.proc._protocol.resume_writing()  # type: ignore[union-attr]


class _WritePipeProtocol(_PipeProtocol):
    pass


class _ReadPipeProtocol(_PipeProtocol, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self.proc._pipe_data_received(self.fd, data)  # type: ignore[union-attr]
