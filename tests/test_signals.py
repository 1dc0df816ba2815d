"""Oracle tests of add_signal_handler / remove_signal_handler: delivery on the
loop thread with arguments, argument and state errors with asyncio's types and
messages, return values, and the process-wide state (Python-level handlers,
the wakeup fd) left behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import ErrorLog

var: contextvars.ContextVar[str] = contextvars.ContextVar("sig_var", default="default")

_TOUCHED = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGHUP]


@pytest.fixture(autouse=True)
def _restore_signal_state() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in _TOUCHED}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(-1)


def _kill_self(sig: int) -> None:
    # Never deliver a signal whose disposition would end the test process.
    assert signal.getsignal(sig) not in (signal.SIG_DFL, None), "no Python-level handler"
    os.kill(os.getpid(), sig)


def _wakeup_fd() -> int:
    """The current wakeup fd (reading it means resetting it; restore it)."""
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd)
    return fd


def _in_thread(fn: Any) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = ("ok", fn())
        except BaseException as exc:
            box["result"] = ("error", type(exc), str(exc))

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    return box["result"]


# --------------------------------------------------------------------------
# delivery
# --------------------------------------------------------------------------


def test_signal_delivered_on_loop_thread_with_args(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()

    def handler(*args: Any) -> None:
        fut.set_result((args, threading.get_ident()))

    assert loop.add_signal_handler(signal.SIGUSR1, handler, "a", 2) is None

    async def main() -> Any:
        _kill_self(signal.SIGUSR1)
        # The callback goes through the loop: it has not run inside os.kill().
        assert not fut.done()
        return await asyncio.wait_for(fut, 10)

    args, ident = loop.run_until_complete(main())
    assert args == ("a", 2)
    assert ident == threading.get_ident()
    assert loop.remove_signal_handler(signal.SIGUSR1) is True


def test_signal_wakes_loop_blocked_in_poll(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR2, lambda: fut.done() or fut.set_result("woken"))
    threads: list[threading.Thread] = []

    main_tid = threading.get_native_id()

    def kill_once_blocked() -> None:
        from .support.blocking import wait_until_blocked_in_poll

        wait_until_blocked_in_poll(os.getpid(), main_tid)
        _kill_self(signal.SIGUSR2)

    def start_killer() -> None:
        # Sent from another thread once the loop waits in its poll, no timers.
        t = threading.Thread(target=kill_once_blocked)
        threads.append(t)
        t.start()

    loop.call_soon(start_killer)
    assert loop.run_until_complete(fut) == "woken"
    threads[0].join(10)
    assert loop.remove_signal_handler(signal.SIGUSR2) is True


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_python_handler_runs_when_signal_lands_on_another_thread(
    loop: asyncio.AbstractEventLoop, loop_kind: str, request: pytest.FixtureRequest
) -> None:
    """A plain signal.signal() handler (asyncio.Runner's SIGINT handler is
    one) runs in the main thread between bytecodes. When the signal is
    delivered to another thread while the loop sleeps in its poll, only a
    wakeup fd brings the main thread back to run it."""
    if loop_kind == "asyncio":
        reason = (
            "asyncio's selector loop sets a wakeup fd only for add_signal_handler: "
            "the handler waits for the next unrelated event (here the 2 s deadline)"
        )
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    from .support.blocking import wait_until_blocked_in_poll

    got: list[int] = []
    deadline_hit: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        got.append(signum)
        loop.stop()

    def deadline() -> None:
        deadline_hit.append(True)
        loop.stop()

    main_tid = threading.get_native_id()

    def signal_me_once_main_sleeps() -> None:
        wait_until_blocked_in_poll(os.getpid(), main_tid)
        # The C-level handler runs on this thread; the Python one is queued
        # for the main thread.
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, handler)
    worker = threading.Thread(target=signal_me_once_main_sleeps)
    loop.call_later(2, deadline)
    loop.call_soon(worker.start)
    loop.run_forever()
    worker.join(10)
    assert got == [signal.SIGUSR1]
    assert deadline_hit == []


def test_run_gives_back_the_wakeup_fd(loop: asyncio.AbstractEventLoop) -> None:
    """Whatever a run does with the wakeup fd, the one in place before it is
    in place after it."""
    a, b = __import__("socket").socketpair()
    a.setblocking(False)
    try:
        signal.set_wakeup_fd(a.fileno())
        loop.run_until_complete(asyncio.sleep(0))
        assert _wakeup_fd() == a.fileno()
        signal.set_wakeup_fd(-1)
        loop.run_until_complete(asyncio.sleep(0))
        assert _wakeup_fd() == -1
    finally:
        signal.set_wakeup_fd(-1)
        a.close()
        b.close()


def test_signal_before_run_is_handled_when_loop_runs(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda: fut.set_result("later"))
    _kill_self(signal.SIGUSR1)
    assert not fut.done()
    assert loop.run_until_complete(asyncio.wait_for(fut, 10)) == "later"


def test_each_delivered_signal_runs_the_handler(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[int] = []
    done = loop.create_future()

    def handler(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            done.set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, handler, 1)
    # A signal a process sends itself is delivered before kill() returns, so
    # these are two deliveries (two bytes on the wakeup fd), not one pending.
    _kill_self(signal.SIGUSR1)
    _kill_self(signal.SIGUSR1)
    loop.run_until_complete(asyncio.wait_for(done, 10))
    assert calls == [1, 1]


def test_replace_signal_handler(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    fut = loop.create_future()

    def second() -> None:
        calls.append("second")
        fut.set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, calls.append, "first")
    loop.add_signal_handler(signal.SIGUSR1, second)

    async def main() -> None:
        _kill_self(signal.SIGUSR1)
        await asyncio.wait_for(fut, 10)

    loop.run_until_complete(main())
    assert calls == ["second"]
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_signal_handler_context(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    token = var.set("at registration")
    try:
        loop.add_signal_handler(signal.SIGUSR1, lambda: fut.set_result(var.get()))
    finally:
        var.reset(token)

    async def main() -> str:
        _kill_self(signal.SIGUSR1)
        return await asyncio.wait_for(fut, 10)

    assert loop.run_until_complete(main()) == "at registration"


def test_signal_handler_exception(loop: asyncio.AbstractEventLoop, errors: ErrorLog) -> None:
    fut = loop.create_future()

    def handler() -> None:
        loop.call_soon(fut.set_result, None)
        raise ValueError("in signal handler")

    loop.add_signal_handler(signal.SIGUSR1, handler)

    async def main() -> None:
        _kill_self(signal.SIGUSR1)
        await asyncio.wait_for(fut, 10)

    loop.run_until_complete(main())
    [ctx] = errors.take()
    assert ctx["message"].startswith("Exception in callback ")
    assert isinstance(ctx["exception"], ValueError)
    assert isinstance(ctx["handle"], asyncio.Handle)


# --------------------------------------------------------------------------
# process-wide state
# --------------------------------------------------------------------------


def test_remove_restores_default_disposition(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert _wakeup_fd() != -1
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    # The last handler is gone: the wakeup fd is released.
    assert _wakeup_fd() == -1


def test_remove_sigint_restores_default_int_handler(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_wakeup_fd_kept_while_handlers_remain(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert _wakeup_fd() != -1
    assert loop.remove_signal_handler(signal.SIGUSR2) is True
    assert _wakeup_fd() == -1


def test_close_removes_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _wakeup_fd() == -1
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "exc_type", "message"),
    [
        ("x", TypeError, "sig must be an int, not 'x'"),
        (1.0, TypeError, "sig must be an int, not 1.0"),
        (None, TypeError, "sig must be an int, not None"),
        (0, ValueError, "invalid signal number 0"),
        (-1, ValueError, "invalid signal number -1"),
        (1000, ValueError, "invalid signal number 1000"),
    ],
)
def test_bad_signal_argument(
    loop: asyncio.AbstractEventLoop, sig: Any, exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type) as info:
        loop.add_signal_handler(sig, lambda: None)
    assert str(info.value) == message
    with pytest.raises(exc_type) as info:
        loop.remove_signal_handler(sig)
    assert str(info.value) == message


def test_coroutine_callback_rejected(loop: asyncio.AbstractEventLoop) -> None:
    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError) as info:
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)
    assert str(info.value) == "coroutines cannot be used with add_signal_handler()"
    coro = coro_fn()
    try:
        with pytest.raises(TypeError) as info:
            loop.add_signal_handler(signal.SIGUSR1, coro)  # type: ignore[arg-type]
        assert str(info.value) == "coroutines cannot be used with add_signal_handler()"
    finally:
        coro.close()
    # Checked before the signal number.
    with pytest.raises(TypeError) as info:
        loop.add_signal_handler("x", coro_fn)  # type: ignore[arg-type]
    assert str(info.value) == "coroutines cannot be used with add_signal_handler()"
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


@pytest.mark.parametrize(
    ("sig", "number"),
    [(signal.SIGKILL, 9), (int(signal.SIGKILL), 9), (signal.SIGSTOP, int(signal.SIGSTOP))],
)
def test_uncatchable_signal(loop: asyncio.AbstractEventLoop, sig: int, number: int) -> None:
    with pytest.raises(RuntimeError) as info:
        loop.add_signal_handler(sig, lambda: None)
    assert str(info.value) == f"sig {number} cannot be caught"
    # Nothing stays registered, and the wakeup fd is released again.
    assert loop.remove_signal_handler(sig) is False
    assert _wakeup_fd() == -1


def test_uncatchable_signal_keeps_other_handlers(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda: fut.set_result("still works"))
    with pytest.raises(RuntimeError, match=r"^sig 9 cannot be caught$"):
        loop.add_signal_handler(signal.SIGKILL, lambda: None)
    assert _wakeup_fd() != -1

    async def main() -> str:
        _kill_self(signal.SIGUSR1)
        return await asyncio.wait_for(fut, 10)

    assert loop.run_until_complete(main()) == "still works"


def test_add_signal_handler_not_main_thread(loop: asyncio.AbstractEventLoop) -> None:
    # asyncio turns set_wakeup_fd()'s ValueError into a RuntimeError with the
    # same text.
    expected = _in_thread(lambda: signal.set_wakeup_fd(-1))
    assert expected[:2] == ("error", ValueError)
    got = _in_thread(lambda: loop.add_signal_handler(signal.SIGUSR1, lambda: None))
    assert got == ("error", RuntimeError, expected[2])
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert _in_thread(lambda: loop.remove_signal_handler(signal.SIGUSR1)) == ("ok", False)
    # Argument checks come first, in any thread.
    assert _in_thread(lambda: loop.add_signal_handler(0, lambda: None)) == (
        "error",
        ValueError,
        "invalid signal number 0",
    )


def test_add_signal_handler_in_loop_running_in_thread(
    loop_factory: Any,
) -> None:
    def body() -> Any:
        lp = loop_factory()
        try:

            async def main() -> Any:
                try:
                    lp.add_signal_handler(signal.SIGUSR1, lambda: None)
                except RuntimeError as exc:
                    return ("RuntimeError", str(exc))
                return "no error"

            return lp.run_until_complete(main())
        finally:
            lp.close()

    expected = _in_thread(lambda: signal.set_wakeup_fd(-1))
    assert _in_thread(body) == ("ok", ("RuntimeError", expected[2]))


def test_signal_handlers_on_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(RuntimeError) as info:
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert str(info.value) == "Event loop is closed"
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    # Argument checks come before the closed check.
    with pytest.raises(ValueError, match=r"^invalid signal number 0$"):
        loop.add_signal_handler(0, lambda: None)
    with pytest.raises(TypeError, match=r"^sig must be an int, not 'x'$"):
        loop.remove_signal_handler("x")  # type: ignore[arg-type]


def test_remove_unregistered(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert loop.remove_signal_handler(signal.SIGKILL) is False
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_sigchld_handler_and_subprocesses_together(loop: asyncio.AbstractEventLoop) -> None:
    """A user's SIGCHLD handler runs, and the loop still reaps its children
    and reports their exit codes."""
    seen: list[int] = []
    got_signal = loop.create_future()

    def on_sigchld() -> None:
        seen.append(signal.SIGCHLD)
        if not got_signal.done():
            got_signal.set_result(None)

    async def main() -> list[int]:
        loop.add_signal_handler(signal.SIGCHLD, on_sigchld)
        try:
            codes = []
            for code in (0, 3, 7):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", f"raise SystemExit({code})"
                )
                codes.append(await asyncio.wait_for(proc.wait(), 30))
            await asyncio.wait_for(got_signal, 30)
            return codes
        finally:
            loop.remove_signal_handler(signal.SIGCHLD)

    assert loop.run_until_complete(main()) == [0, 3, 7]
    assert seen and set(seen) == {signal.SIGCHLD}


SIGINT_PROGRAM = """
import asyncio, sys
sys.path.insert(0, {src!r})
import tideloop

async def main():
    print("ready", flush=True)
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        print("main cancelled", flush=True)
        raise

factory = tideloop.new_event_loop if {use_tideloop!r} else asyncio.new_event_loop
try:
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


@pytest.mark.parametrize("use_tideloop", [False, True], ids=["asyncio", "tideloop"])
def test_ctrl_c_cancels_the_main_task(use_tideloop: bool) -> None:
    """asyncio.Runner's SIGINT handling: Ctrl-C cancels the main task, then
    KeyboardInterrupt is raised from run()."""
    import subprocess
    from pathlib import Path

    src = str(Path(__file__).resolve().parent.parent / "src")
    code = SIGINT_PROGRAM.format(src=src, use_tideloop=use_tideloop)
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            # Signal once the loop sleeps in its poll: a SIGINT that lands
            # just before the poll is a lost wakeup on stock asyncio (see
            # test_python_handler_runs_when_signal_lands_on_another_thread).
            if os.path.exists(f"/proc/{proc.pid}/task"):
                from .support.blocking import wait_until_blocked_in_poll

                wait_until_blocked_in_poll(proc.pid, proc.pid)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:  # never leave a child behind for other tests
                proc.kill()
                proc.wait()
    assert out.split() == ["main", "cancelled", "KeyboardInterrupt"]
    assert proc.returncode == 0
