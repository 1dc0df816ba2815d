"""Subprocesses (src/tideloop/_subprocess.py): loop.subprocess_exec/_shell, the
subprocess transport, and asyncio.create_subprocess_* on top of them.

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, plus ``tideloop-thread``: the default backend with the pidfd watcher
disabled, so the child's exit is seen by a waiter thread. Tests assert what a
protocol or a ``Process`` user observes: callbacks and their order, return
codes, exceptions and their messages. Children are small ``python -I -S -c``
scripts (``-S``: a child starts in ~20 ms instead of ~100). No sleeps: the
tests wait on futures, on the child's output, or on pipes they control.
"""

from __future__ import annotations

import asyncio
import gc
import glob
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

import tideloop
from tideloop._transports import _subprocess

from .conftest import LOOP_KINDS, ErrorLog, LoopFactory, make_factory

pytestmark = pytest.mark.timeout(30)

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT

THREAD_KIND = "tideloop-thread"


@pytest.fixture(params=[*LOOP_KINDS, THREAD_KIND])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def loop_factory(loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> LoopFactory:
    if loop_kind == THREAD_KIND:
        monkeypatch.setattr(_subprocess, "_pidfd_usable", False)
        return tideloop.new_event_loop
    return make_factory(loop_kind)


def _children() -> set[int]:
    """This process's children, alive or zombie (Linux /proc)."""
    pids: set[int] = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(path) as f:
                pids.update(int(pid) for pid in f.read().split())
        except FileNotFoundError:
            pass  # that thread has ended meanwhile
    return pids


@pytest.fixture(autouse=True)
def _no_leftover_children_or_threads() -> Iterator[None]:
    threads = set(threading.enumerate())
    # Children that were there before (another test's) are not this test's.
    children = _children()
    yield
    for t in set(threading.enumerate()) - threads:
        # Waiter threads end when their child exits: give them a moment.
        t.join(10)
        assert not t.is_alive(), f"thread left running: {t!r}"
    assert _children() - children == set(), "child left behind, zombie or alive"


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code, *args]


def run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, 20))


class Recorder(asyncio.SubprocessProtocol):
    """Records every callback; futures for the milestones."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[Any] = []
        self.data: dict[int, bytes] = {1: b"", 2: b""}
        self.transport: Any = None
        self.connected = loop.create_future()
        self.exited = loop.create_future()
        self.lost = loop.create_future()
        self._loop = loop
        self._data_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.events.append("connection_made")
        self.transport = transport
        self.connected.set_result(None)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.events.append(("data", fd))
        self.data[fd] += data
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    async def wait_for_output(self, fd: int, needle: bytes) -> None:
        while needle not in self.data[fd]:
            self._data_waiter = self._loop.create_future()
            await self._data_waiter

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self) -> None:
        self.events.append("process_exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("connection_lost", exc))
        self.lost.set_result(None)


def exec_(loop: asyncio.AbstractEventLoop, args: list[str], **kwargs: Any) -> tuple[Any, Recorder]:
    return run(loop, loop.subprocess_exec(lambda: Recorder(loop), *args, **kwargs))  # type: ignore[no-any-return]


def finish(loop: asyncio.AbstractEventLoop, transport: Any, proto: Recorder) -> None:
    run(loop, proto.lost)
    transport.close()


def squeeze(events: list[Any]) -> list[Any]:
    """Consecutive ("data", fd) events as one (how reads split is up to the OS)."""
    out: list[Any] = []
    for ev in events:
        if not (out and ev == out[-1] and isinstance(ev, tuple) and ev[0] == "data"):
            out.append(ev)
    return out


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------

EXEC_ERRORS = [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": True}, "shell must be False"),
    ({"bufsize": 4096}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
    # The first failing check wins.
    (
        {"universal_newlines": True, "shell": True, "errors": "x"},
        "universal_newlines must be False",
    ),
    ({"bufsize": 1, "encoding": "utf-8"}, "bufsize must be 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), EXEC_ERRORS)
def test_subprocess_exec_argument_errors(
    loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any], message: str
) -> None:
    factory = mock.Mock()
    with pytest.raises(ValueError) as info:
        run(loop, loop.subprocess_exec(factory, sys.executable, "-c", "pass", **kwargs))
    assert str(info.value) == message
    factory.assert_not_called()


SHELL_ERRORS = [
    ({"cmd": ["ls", "-l"]}, "cmd must be a string"),
    ({"cmd": None}, "cmd must be a string"),
    ({"cmd": ["ls"], "universal_newlines": True}, "cmd must be a string"),
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": False}, "shell must be True"),
    ({"bufsize": 4096}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
]


@pytest.mark.parametrize(("kwargs", "message"), SHELL_ERRORS)
def test_subprocess_shell_argument_errors(
    loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any], message: str
) -> None:
    kwargs = dict(kwargs)
    cmd = kwargs.pop("cmd", "exit 0")
    factory = mock.Mock()
    with pytest.raises(ValueError) as info:
        run(loop, loop.subprocess_shell(factory, cmd, **kwargs))
    assert str(info.value) == message
    factory.assert_not_called()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"text": True}, "text must be False"), ({"encoding": "utf-8"}, "encoding must be None")],
)
def test_create_subprocess_text_mode_fails(
    loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any], message: str
) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=message):
            await asyncio.create_subprocess_exec(sys.executable, **kwargs)
        with pytest.raises(ValueError, match=message):
            await asyncio.create_subprocess_shell("exit 0", **kwargs)

    run(loop, main())


def test_false_values_are_accepted(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(
        loop,
        py("pass"),
        universal_newlines=False,
        shell=False,
        bufsize=0,
        text=False,
        encoding=None,
        errors=None,
        stdin=None,
        stdout=None,
        stderr=None,
    )
    finish(loop, transport, proto)
    assert transport.get_returncode() == 0


def test_popen_keyword_error(loop: asyncio.AbstractEventLoop) -> None:
    """Unknown keywords reach Popen, whose TypeError propagates (nothing leaks)."""
    with pytest.raises(TypeError) as info:
        exec_(loop, py("pass"), no_such_option=1)
    assert "no_such_option" in str(info.value)
    gc.collect()


@pytest.mark.parametrize("stdin", [None, PIPE])
def test_popen_error_closes_transport(loop: asyncio.AbstractEventLoop, stdin: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mock.patch("subprocess.Popen", side_effect=ZeroDivisionError):
            with pytest.raises(ZeroDivisionError):
                exec_(loop, py("pass"), stdin=stdin)
        gc.collect()
    assert caught == []


def test_missing_program(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(FileNotFoundError):
        exec_(loop, ["/nonexistent/program-tideloop"])


# --------------------------------------------------------------------------
# protocol callbacks
# --------------------------------------------------------------------------


def test_callbacks_and_their_order(loop: asyncio.AbstractEventLoop) -> None:
    code = "import sys; sys.stdout.write('out'); sys.stderr.write('err'); sys.exit(3)"
    transport, proto = exec_(loop, py(code))
    # connection_made ran before subprocess_exec() returned.
    assert proto.events[:1] == ["connection_made"]
    assert proto.transport is transport
    finish(loop, transport, proto)
    events = squeeze(proto.events)
    assert events[0] == "connection_made"
    assert events[-1] == ("connection_lost", None)
    middle = events[1:-1]
    assert sorted(map(repr, middle)) == sorted(
        map(
            repr,
            [
                ("data", 1),
                ("data", 2),
                ("pipe_lost", 0, None),
                ("pipe_lost", 1, None),
                ("pipe_lost", 2, None),
                "process_exited",
            ],
        )
    )
    # Per fd: data, then the pipe's end.
    for fd in (1, 2):
        assert middle.index(("data", fd)) < middle.index(("pipe_lost", fd, None))
    assert proto.data == {1: b"out", 2: b"err"}
    assert transport.get_returncode() == 3
    assert proto.exited.result() == 3


def test_output_before_connection_made_is_replayed(loop: asyncio.AbstractEventLoop) -> None:
    """Pipe events that happen while the pipes connect come after connection_made."""

    class Proto(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # Nothing was delivered before this.
            assert self.events == ["connection_made"]

    transport, proto = run(
        loop,
        loop.subprocess_exec(
            lambda: Proto(loop), *py("import os; os.write(1, b'x' * 100000)"), stdin=None
        ),
    )
    finish(loop, transport, proto)
    assert proto.data[1] == b"x" * 100000
    assert proto.events[-1] == ("connection_lost", None)


def test_connection_lost_waits_for_every_pipe(loop: asyncio.AbstractEventLoop) -> None:
    """The child exits while a grandchild still holds stdout: connection_lost
    (and ProcessLookupError from the signal methods) waits for the pipe."""
    r, w = os.pipe()
    code = (
        "import os, sys\n"
        "r = int(sys.argv[1])\n"
        "if os.fork() == 0:\n"
        "    os.read(r, 1); os.write(1, b'late'); os._exit(0)\n"
    )
    try:
        transport, proto = exec_(loop, py(code, str(r)), stdin=None, pass_fds=(r,))
        os.close(r)
        r = -1
        assert run(loop, proto.exited) == 0
        assert transport.get_returncode() == 0
        assert ("connection_lost", None) not in proto.events
        # The child is gone but the transport is not: no ProcessLookupError.
        transport.send_signal(0)
        os.write(w, b"x")  # let the grandchild finish
        run(loop, proto.lost)
    finally:
        os.close(w)
        if r >= 0:
            os.close(r)
    assert proto.data[1] == b"late"
    assert proto.events[-1] == ("connection_lost", None)
    for method in (transport.terminate, transport.kill, lambda: transport.send_signal(0)):
        with pytest.raises(ProcessLookupError):
            method()
    transport.close()


def test_callback_error_goes_to_exception_handler(
    loop: asyncio.AbstractEventLoop, errors: ErrorLog
) -> None:
    class Boom(Recorder):
        def pipe_data_received(self, fd: int, data: bytes) -> None:
            super().pipe_data_received(fd, data)
            raise ZeroDivisionError

    transport, proto = run(
        loop,
        loop.subprocess_exec(lambda: Boom(loop), *py("print('hi')"), stdin=None, stderr=None),
    )
    finish(loop, transport, proto)
    (ctx,) = errors.take()
    assert ctx["message"].startswith("Exception in callback ")
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert proto.events[-1] == ("connection_lost", None)


def test_set_protocol(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(loop, py("import sys; sys.stdin.read(); print('bye')"))
    other = Recorder(loop)
    other.transport = transport
    transport.set_protocol(other)
    assert transport.get_protocol() is other
    transport.get_pipe_transport(0).close()
    run(loop, other.lost)
    transport.close()
    assert other.data[1] == b"bye\n"
    assert "process_exited" in other.events
    assert "process_exited" not in proto.events


# --------------------------------------------------------------------------
# the transport
# --------------------------------------------------------------------------


def test_pid_returncode_and_extra(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(
        loop, py("import sys; sys.stdin.read()"), stdout=None, stderr=None, extra={"k": "v"}
    )
    popen = transport.get_extra_info("subprocess")
    assert isinstance(popen, subprocess.Popen)
    assert transport.get_pid() == popen.pid
    assert transport.get_extra_info("k") == "v"
    assert transport.get_returncode() is None
    assert f"pid={popen.pid} running" in repr(transport)
    assert not transport.is_closing()
    transport.get_pipe_transport(0).close()
    finish(loop, transport, proto)
    assert transport.get_returncode() == 0
    assert popen.returncode == 0
    assert f"pid={popen.pid} returncode=0" in repr(transport)
    assert "closed" in repr(transport)
    assert transport.is_closing()


@pytest.mark.parametrize(
    ("stdin", "stdout", "stderr", "expected"),
    [
        (PIPE, PIPE, PIPE, (True, True, True)),
        (None, None, None, (False, False, False)),
        (DEVNULL, PIPE, DEVNULL, (False, True, False)),
        (PIPE, PIPE, STDOUT, (True, True, False)),
    ],
)
def test_get_pipe_transport(
    loop: asyncio.AbstractEventLoop, stdin: Any, stdout: Any, stderr: Any, expected: Any
) -> None:
    transport, proto = exec_(loop, py("pass"), stdin=stdin, stdout=stdout, stderr=stderr)
    pipes = [transport.get_pipe_transport(fd) for fd in (0, 1, 2)]
    assert tuple(p is not None for p in pipes) == expected
    if pipes[0] is not None:
        assert isinstance(pipes[0], asyncio.WriteTransport)
    for p in pipes[1:]:
        if p is not None:
            assert isinstance(p, asyncio.ReadTransport)
    assert transport.get_pipe_transport(3) is None
    if pipes[0] is not None:
        pipes[0].close()
    finish(loop, transport, proto)


@pytest.mark.parametrize(
    ("method", "signum"),
    [("kill", signal.SIGKILL), ("terminate", signal.SIGTERM), ("send_signal", signal.SIGUSR1)],
)
def test_signals(loop: asyncio.AbstractEventLoop, method: str, signum: int) -> None:
    code = "import signal, sys, time\nprint('ready', flush=True)\nsys.stdin.read()"
    transport, proto = exec_(loop, py(code), stderr=None)

    run(loop, proto.wait_for_output(1, b"ready"))
    args = (signum,) if method == "send_signal" else ()
    assert getattr(transport, method)(*args) is None
    assert run(loop, proto.exited) == -signum
    finish(loop, transport, proto)
    assert transport.get_returncode() == -signum


def test_close_kills_running_child(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(loop, py("import sys; sys.stdin.read()"))
    pipes = [transport.get_pipe_transport(fd) for fd in (0, 1, 2)]
    assert transport.close() is None
    assert transport.is_closing()
    assert all(p.is_closing() for p in pipes)
    run(loop, proto.lost)
    assert transport.get_returncode() == -signal.SIGKILL
    transport.close()  # again: nothing happens


def test_close_kill_uses_popen_kill(loop: asyncio.AbstractEventLoop) -> None:
    transport, _proto = exec_(loop, py("import sys; sys.stdin.read()"), stdout=None, stderr=None)
    popen = transport.get_extra_info("subprocess")
    with mock.patch.object(popen, "kill", wraps=popen.kill) as kill:
        transport.close()
    kill.assert_called_once_with()
    run(loop, transport._wait())
    assert transport.get_returncode() == -signal.SIGKILL


def test_close_does_not_kill_finished_child(loop: asyncio.AbstractEventLoop) -> None:
    """Even when the loop has not noticed the exit yet (the Popen object knows)."""
    transport, _proto = exec_(loop, py("pass"), stdin=None, stdout=None, stderr=None)
    popen = transport.get_extra_info("subprocess")
    popen.wait()  # reaped behind the loop's back
    with mock.patch.object(popen, "kill") as kill:
        transport.close()
    kill.assert_not_called()
    run(loop, transport._wait())


def test_close_after_exit_keeps_returncode(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(loop, py("raise SystemExit(5)"), stdin=None)
    run(loop, proto.lost)
    transport.close()
    assert transport.get_returncode() == 5


def test_unclosed_transport_warns(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(loop, py("pass"), stdin=None, stdout=None, stderr=None)
    run(loop, proto.lost)
    proto.transport = None
    with pytest.warns(ResourceWarning, match="unclosed transport <"):
        del transport
        gc.collect()


def test_unclosed_running_transport_is_killed_on_gc(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = exec_(loop, py("import sys; sys.stdin.read()"), stdout=None, stderr=None)
    popen = transport.get_extra_info("subprocess")
    with pytest.warns(ResourceWarning, match="unclosed transport <"):
        transport.__del__()
    assert transport.is_closing()
    run(loop, proto.lost)
    assert popen.returncode == -signal.SIGKILL
    transport.close()


def test_wait_concurrently_and_after_exit(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[int]:
        proc = await asyncio.create_subprocess_exec(*py("raise SystemExit(4)"))
        assert proc.returncode is None or proc.returncode == 4
        results = await asyncio.gather(*[proc.wait() for _ in range(5)])
        results.append(await proc.wait())
        return results

    assert run(loop, main()) == [4] * 6


def test_cancel_wait(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(*py("import sys; sys.stdin.read()"), stdin=PIPE)
        task = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proc.kill()
        return await proc.wait()

    assert run(loop, main()) == -signal.SIGKILL


def test_cancel_during_creation(loop: asyncio.AbstractEventLoop) -> None:
    """Cancelled while the pipes connect: the child is killed and reaped."""

    async def main() -> None:
        task = asyncio.ensure_future(
            loop.subprocess_exec(asyncio.SubprocessProtocol, *py("import time; time.sleep(60)"))
        )
        loop.call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task

    run(loop, main())


def test_loop_in_another_thread(loop_factory: LoopFactory) -> None:
    """Subprocesses work on a loop that runs outside the main thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        lp = loop_factory()
        try:

            async def main() -> tuple[bytes, int]:
                proc = await asyncio.create_subprocess_exec(
                    *py("import sys; sys.stdout.write(sys.stdin.read())"), stdin=PIPE, stdout=PIPE
                )
                out, _ = await proc.communicate(b"thread")
                return out, proc.returncode  # type: ignore[return-value]

            box["result"] = lp.run_until_complete(asyncio.wait_for(main(), 20))
        except BaseException as exc:
            box["result"] = exc
        finally:
            lp.close()

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    assert box["result"] == (b"thread", 0)


class _Messages(logging.Handler):
    """Log messages formatted when logged (a record formats its args lazily)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_debug_logging(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    log = logging.getLogger("asyncio")
    handler = _Messages()
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        transport, proto = exec_(loop, py("import sys; sys.stdin.read()"), stderr=STDOUT)
        transport.close()
        run(loop, proto.lost)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        loop.set_debug(False)
    pid = transport.get_pid()
    messages = handler.messages
    assert f"execute program {sys.executable!r} stdin=<pipe> stdout=stderr=<pipe>" in messages
    assert f"process {sys.executable!r} created: pid {pid}" in messages
    assert any(
        m.startswith(f"execute program {sys.executable!r}: <") and f" pid={pid} running " in m
        for m in messages
    )
    assert any(m.startswith("Close running child process: kill <") for m in messages)
    assert any(
        f" pid={pid} running" in m and m.endswith(f"> exited with return code {-signal.SIGKILL}")
        for m in messages
    )


# --------------------------------------------------------------------------
# stdin/stdout/stderr forms, fds, environment
# --------------------------------------------------------------------------


def test_stderr_to_stdout(loop: asyncio.AbstractEventLoop) -> None:
    code = "import os; os.write(1, b'out,'); os.write(2, b'err')"
    transport, proto = exec_(loop, py(code), stdin=None, stderr=STDOUT)
    finish(loop, transport, proto)
    assert proto.data == {1: b"out,err", 2: b""}


def test_devnull(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[Any, Any, int]:
        proc = await asyncio.create_subprocess_exec(
            *py("import sys; print(len(sys.stdin.read())); print('e', file=sys.stderr)"),
            stdin=DEVNULL,
            stdout=PIPE,
            stderr=DEVNULL,
        )
        out, err = await proc.communicate()
        return out, err, proc.returncode

    assert run(loop, main()) == (b"0\n", None, 0)


def test_file_object_and_fd_targets(loop: asyncio.AbstractEventLoop) -> None:
    code = "import os; os.write(1, b'to file'); os.write(2, b'to fd')"
    r, w = os.pipe()
    with tempfile.TemporaryFile() as f:
        try:
            transport, proto = exec_(loop, py(code), stdin=None, stdout=f, stderr=w)
            os.close(w)
            w = -1
            finish(loop, transport, proto)
            assert os.read(r, 100) == b"to fd"
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        f.seek(0)
        assert f.read() == b"to file"
    assert transport.get_pipe_transport(1) is None
    assert transport.get_pipe_transport(2) is None


def test_stdin_from_file(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryFile() as f:
        f.write(b"from a file")
        f.seek(0)

        async def main() -> bytes:
            proc = await asyncio.create_subprocess_exec(
                *py("import sys; sys.stdout.write(sys.stdin.read().upper())"),
                stdin=f,
                stdout=PIPE,
            )
            out, _ = await proc.communicate()
            return out

        assert run(loop, main()) == b"FROM A FILE"


@pytest.mark.parametrize("passed", [True, False])
def test_pass_fds_and_close_fds(loop: asyncio.AbstractEventLoop, passed: bool) -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)  # close_fds=True (the default) must still close it
    code = (
        "import os, sys\n"
        "try:\n"
        "    os.write(int(sys.argv[1]), b'ok')\n"
        "except OSError as e:\n"
        "    print(e.errno)"
    )
    kwargs: dict[str, Any] = {"pass_fds": (w,)} if passed else {}
    try:
        transport, proto = exec_(loop, py(code, str(w)), stdin=None, **kwargs)
        finish(loop, transport, proto)
        os.close(w)
        w = -1
        if passed:
            assert os.read(r, 10) == b"ok"
        else:
            assert os.read(r, 10) == b""
            assert proto.data[1].strip() == b"9"  # EBADF
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_pipes_are_not_inherited(loop: asyncio.AbstractEventLoop) -> None:
    """close_fds=False: the child must still see EOF on stdin (asyncio issue #209)."""

    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *py("import sys; print(len(sys.stdin.read()))"),
            stdin=PIPE,
            stdout=PIPE,
            close_fds=False,
        )
        out, _ = await proc.communicate(b"abc")
        return out

    assert run(loop, main()) == b"3\n"


def test_env_cwd_and_bytes_shell_command(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes]:
        env = {**os.environ, "TIDELOOP_TEST_VAR": "hello"}
        proc = await asyncio.create_subprocess_shell(
            b'echo "$TIDELOOP_TEST_VAR"; pwd', stdout=PIPE, env=env, cwd="/"
        )
        out, _ = await proc.communicate()
        proc2 = await asyncio.create_subprocess_exec(
            *py("import os; print(os.getcwd())"), stdout=PIPE, cwd="/"
        )
        out2, _ = await proc2.communicate()
        return out, out2

    assert run(loop, main()) == (b"hello\n/\n", b"/\n")


def test_start_new_session(loop: asyncio.AbstractEventLoop) -> None:
    transport, proto = run(
        loop,
        loop.subprocess_shell(
            lambda: Recorder(loop),
            "exit 7",
            stdin=None,
            stdout=None,
            stderr=None,
            start_new_session=True,
        ),
    )
    finish(loop, transport, proto)
    assert transport.get_returncode() == 7


# --------------------------------------------------------------------------
# asyncio.subprocess.Process on top
# --------------------------------------------------------------------------


def test_communicate(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            *py(
                "import sys; d = sys.stdin.buffer.read(); "
                "sys.stdout.buffer.write(d[::-1]); sys.stderr.write('e'); sys.exit(2)"
            ),
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
        )
        out, err = await proc.communicate(b"abc")
        return out, err, proc.returncode

    assert run(loop, main()) == (b"cba", b"e", 2)


def test_large_stdin_with_drain(loop: asyncio.AbstractEventLoop) -> None:
    """More than a pipe holds: write() queues, drain() waits, the child gets it all."""
    data = os.urandom(1 << 20)

    async def main() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *py(
                "import hashlib, sys; d = sys.stdin.buffer.read(); "
                "print(len(d), hashlib.sha256(d).hexdigest())"
            ),
            stdin=PIPE,
            stdout=PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()
        await proc.stdin.wait_closed()
        line = await proc.stdout.read()
        assert await proc.wait() == 0
        size, digest = line.split()
        return int(size), digest.decode()

    assert run(loop, main()) == (len(data), hashlib.sha256(data).hexdigest())


def test_large_stdout(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(
            *py("import os; os.write(1, b'y' * 3000000)"), stdout=PIPE
        )
        out, _ = await proc.communicate()
        assert out == b"y" * 3000000
        return proc.returncode  # type: ignore[return-value]

    assert run(loop, main()) == 0


def test_stdin_broken_pipe(loop: asyncio.AbstractEventLoop) -> None:
    """The child exits without reading: drain() raises, communicate() does not."""

    async def main() -> None:
        r, w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *py("import os, sys; os.read(int(sys.argv[1]), 1)", str(r)),
                stdin=PIPE,
                pass_fds=(r,),
            )
            assert proc.stdin is not None
            proc.stdin.write(b"x" * (4 << 20))
            os.write(w, b"go")
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                await proc.stdin.drain()
            assert await proc.wait() == 0
        finally:
            os.close(r)
            os.close(w)
        proc = await asyncio.create_subprocess_exec(*py("pass"), stdin=PIPE)
        await proc.communicate(b"x" * (4 << 20))
        assert proc.returncode == 0

    run(loop, main())


def test_process_signals_after_exit(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(*py("pass"))
        assert await proc.wait() == 0
        # Process.wait() returned: the transport lost its process.
        with pytest.raises(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with pytest.raises(ProcessLookupError):
            proc.terminate()
        with pytest.raises(ProcessLookupError):
            proc.kill()

    run(loop, main())


def test_shell(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_shell("echo hi; exit 7", stdout=PIPE)
        out, _ = await proc.communicate()
        return proc.returncode, out  # type: ignore[return-value]

    assert run(loop, main()) == (7, b"hi\n")


# --------------------------------------------------------------------------
# no leaks: fds, zombies, threads
# --------------------------------------------------------------------------


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_many_children_leak_nothing(loop: asyncio.AbstractEventLoop) -> None:
    program = ["/bin/true"] if os.path.exists("/bin/true") else py("pass")

    def join_waiter_threads() -> None:
        # Waiter threads (tideloop-thread, asyncio 3.11) may still be exiting.
        for t in threading.enumerate():
            if "waitpid" in t.name:
                t.join(10)

    async def main() -> None:
        for _ in range(5):  # warm up lazily created loop resources
            await (await asyncio.create_subprocess_exec(*program)).wait()
        join_waiter_threads()
        fds = _fd_count()
        threads = threading.active_count()
        children = _children()
        for i in range(2000):  # thousands, in a row
            if i % 3 == 0:
                proc = await asyncio.create_subprocess_exec(*program, stdout=PIPE, stderr=PIPE)
                await proc.communicate()
            else:
                proc = await asyncio.create_subprocess_exec(*program)
                assert await proc.wait() == 0
            assert proc.returncode == 0
        assert _children() == children  # no zombie, nothing alive
        assert _fd_count() == fds
        join_waiter_threads()
        assert threading.active_count() == threads

    run(loop, main())


TIDELOOP_KINDS = [k for k in [*LOOP_KINDS, THREAD_KIND] if k.startswith("tideloop")]


@pytest.mark.parametrize("loop_kind", TIDELOOP_KINDS)
def test_loop_closed_with_running_child(
    loop_kind: str, loop_factory: LoopFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """tideloop only (asyncio 3.12+ leaks the pidfd of a child running at loop
    close): closing the loop releases the pidfd; the child is reaped from a
    thread once it exits."""
    before = set(os.listdir("/proc/self/fd"))
    lp = loop_factory()
    transport, _proto = run(
        lp,
        lp.subprocess_exec(
            asyncio.SubprocessProtocol,
            *py("import time; time.sleep(60)"),
            stdin=None,
            stdout=None,
            stderr=None,
        ),
    )
    lp.close()
    assert set(os.listdir("/proc/self/fd")) == before
    popen = transport.get_extra_info("subprocess")
    with caplog.at_level("WARNING", logger="asyncio"):
        transport.close()  # kills the child (the loop is closed: nothing else to do)
        for t in threading.enumerate():
            if t.name == f"tideloop-waitpid-{popen.pid}":
                t.join(10)
    assert "that handles pid" in caplog.text


@pytest.mark.parametrize("loop_kind", TIDELOOP_KINDS)
def test_pidfd_is_used_when_available(loop_kind: str, loop_factory: LoopFactory) -> None:
    """tideloop internals: a pidfd where the kernel has them, else a waiter thread."""
    lp = loop_factory()
    try:
        transport, _proto = run(
            lp,
            lp.subprocess_exec(
                asyncio.SubprocessProtocol,
                *py("import sys; sys.stdin.read()"),
                stdout=None,
                stderr=None,
            ),
        )
        threaded = any(t.name.startswith("tideloop-waitpid") for t in threading.enumerate())
        expect_pidfd = loop_kind != THREAD_KIND and _subprocess.pidfd_usable()
        assert (transport._pidfd >= 0) is expect_pidfd
        assert threaded is not expect_pidfd
        transport.close()
        lp.run_until_complete(transport._wait())
        assert transport._pidfd == -1
    finally:
        lp.close()
