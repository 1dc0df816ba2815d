"""Entry points (src/tideloop/_runner.py): ``tideloop.run``, tideloop as
``asyncio.run``/``asyncio.Runner``'s loop factory, and the legacy policy path
(``tideloop.EventLoopPolicy``, ``tideloop.install``) with the policy functions
programs call once it is installed.

Oracle: ``tideloop.run`` is checked against ``asyncio.run`` itself, and every
policy scenario runs with stock asyncio's ``DefaultEventLoopPolicy`` and with
``tideloop.EventLoopPolicy``, asserting the same results, errors, messages and
``DeprecationWarning``s (asyncio's differ per Python version: 3.12+ warns
when ``get_event_loop()`` creates the main thread's loop implicitly, 3.11
does not). Ctrl-C is a real SIGINT sent to a child process.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tideloop
from tideloop import _runner

from .conftest import LOOP_KINDS, make_factory
from .support.blocking import wait_until_blocked_in_poll

SRC = str(Path(__file__).resolve().parent.parent / "src")
PY312 = sys.version_info >= (3, 12)
# asyncio warns when get_event_loop() makes the main thread's loop implicitly.
IMPLICIT_LOOP_WARNS = PY312

pytestmark = pytest.mark.timeout(30)

BACKENDS = tideloop.available_backends()
RUN_KINDS = ["asyncio.run"] + [f"tideloop.run-{b}" for b in BACKENDS]


@pytest.fixture
def fresh_policy() -> Iterator[None]:
    """A new default policy for the test (asyncio.run marks the policy's
    main-thread loop as explicitly set); the previous one restored after."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(previous)


@pytest.fixture(params=RUN_KINDS)
def run(request: pytest.FixtureRequest, fresh_policy: None) -> Callable[..., Any]:
    """asyncio.run, or tideloop.run with one backend."""
    kind = str(request.param)
    if kind == "asyncio.run":
        return asyncio.run
    return functools.partial(tideloop.run, backend=kind.split("-", 1)[1])


def expected_loop_type(run: Callable[..., Any]) -> type[asyncio.AbstractEventLoop]:
    return asyncio.SelectorEventLoop if run is asyncio.run else tideloop.EventLoop


def _warnings(records: list[warnings.WarningMessage]) -> list[tuple[type[Warning], str, str]]:
    return [(w.category, str(w.message), os.path.basename(w.filename)) for w in records]


# -- tideloop.run -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_uses_a_tideloop_loop_with_the_backend(backend: str) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> str:
        loop = asyncio.get_running_loop()
        seen.append(loop)
        return str(loop.stats()["backend"])  # type: ignore[attr-defined]

    assert tideloop.run(main(), backend=backend) == backend
    assert type(seen[0]) is tideloop.EventLoop
    assert seen[0].is_closed()


def test_run_default_backend_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> str:
        return str(asyncio.get_running_loop().stats()["backend"])  # type: ignore[attr-defined]

    monkeypatch.setenv("TIDELOOP_BACKEND", "select")
    assert tideloop.run(main()) == "select"
    monkeypatch.delenv("TIDELOOP_BACKEND")
    assert tideloop.run(main()) == tideloop.available_backends()[0]


def test_run_result_and_loop_lifecycle(run: Callable[..., Any]) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main(x: int) -> int:
        seen.append(asyncio.get_running_loop())
        assert asyncio.get_event_loop() is seen[0]  # the running loop
        return x * 2

    assert run(main(21)) == 42
    assert isinstance(seen[0], expected_loop_type(run))
    assert seen[0].is_closed()
    assert not seen[0].is_running()
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()


def test_run_cleans_up_like_asyncio_run(run: Callable[..., Any]) -> None:
    events: list[str] = []
    executor_threads: list[threading.Thread] = []
    keep: list[Any] = []  # neither the task nor the generator is garbage

    async def leftover() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("leftover cancelled")
            raise

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            events.append("asyncgen closed")

    async def main() -> str:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(leftover())
        gen = agen()
        assert await gen.__anext__() == 1  # suspended at a yield: only shutdown_asyncgens ends it
        await loop.run_in_executor(
            None, lambda: executor_threads.append(threading.current_thread())
        )
        await asyncio.sleep(0)
        keep.extend((task, gen))
        return "done"

    assert run(main()) == "done"
    assert events == ["leftover cancelled", "asyncgen closed"]
    assert executor_threads and not any(t.is_alive() for t in executor_threads)


def test_run_propagates_the_exception(run: Callable[..., Any]) -> None:
    async def main() -> None:
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        run(main())


@pytest.mark.parametrize("debug", [True, False, None])
def test_run_debug_flag(run: Callable[..., Any], debug: bool | None) -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    default = asyncio.SelectorEventLoop()
    try:
        expected = default.get_debug() if debug is None else debug
    finally:
        default.close()
    assert run(main(), debug=debug) is expected


@pytest.mark.parametrize("outer", LOOP_KINDS)
def test_run_refuses_inside_a_running_loop(run: Callable[..., Any], outer: str) -> None:
    async def inner() -> None:
        pass

    async def main() -> str:
        coro = inner()
        try:
            run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()
        return "no error"

    loop = make_factory(outer)()
    try:
        message = loop.run_until_complete(main())
    finally:
        loop.close()
    assert message == "asyncio.run() cannot be called from a running event loop"


def test_run_not_a_coroutine_fails_as_asyncio_run(run: Callable[..., Any]) -> None:
    with pytest.raises(Exception) as info:
        run(123)
    with pytest.raises(Exception) as expected:
        asyncio.run(123)  # type: ignore[arg-type]
    assert type(info.value) is type(expected.value)
    assert str(info.value) == str(expected.value)


def test_run_unknown_backend() -> None:
    async def main() -> None:
        pass

    coro = main()
    with pytest.raises(ValueError, match="unknown tideloop backend 'nope'"):
        tideloop.run(coro, backend="nope")
    coro.close()


def test_run_passes_the_context_of_main(run: Callable[..., Any]) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def child() -> str:
        return var.get()

    async def main() -> tuple[str, str]:
        var.set("set in main")
        return var.get(), await asyncio.create_task(child())

    assert run(main()) == ("set in main", "set in main")
    assert var.get() == "unset"


def test_run_leaves_the_policy_loop_alone(fresh_policy: None) -> None:
    """Like asyncio.run(main, loop_factory=...): the loop is not made the
    policy's current loop, so a loop the program set before stays set."""
    mine = asyncio.SelectorEventLoop()
    asyncio.set_event_loop(mine)
    try:

        async def main() -> bool:
            return asyncio.get_event_loop() is asyncio.get_running_loop()

        assert tideloop.run(main()) is True
        assert asyncio.get_event_loop() is mine
        if PY312:
            assert asyncio.run(main(), loop_factory=asyncio.SelectorEventLoop) is True
            assert asyncio.get_event_loop() is mine
    finally:
        asyncio.set_event_loop(None)
        mine.close()


# -- Ctrl-C ------------------------------------------------------------------------------

SIGINT_PROGRAM = """
import asyncio, signal, sys
import tideloop

# As an interactive start would have it (a background parent may ignore SIGINT).
signal.signal(signal.SIGINT, signal.default_int_handler)
RUN = tideloop.run if sys.argv[1] == "tideloop.run" else asyncio.run
STUBBORN = sys.argv[2] == "stubborn"

async def leftover():
    try:
        await asyncio.Event().wait()
    finally:
        print("leftover cleaned up", flush=True)

async def main():
    task = asyncio.create_task(leftover())
    await asyncio.sleep(0)
    print("ready", type(asyncio.get_running_loop()).__name__, flush=True)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        print("main cancelled", flush=True)
        if STUBBORN:
            print("ignoring it", flush=True)
            await asyncio.Event().wait()
        raise

try:
    RUN(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
          flush=True)
    raise
"""


@pytest.mark.parametrize("mode", ["cooperative", "stubborn"])
@pytest.mark.parametrize("entry", ["asyncio.run", "tideloop.run"])
def test_ctrl_c_cancels_main_and_raises_keyboard_interrupt(
    entry: str, mode: str, tmp_path: Path
) -> None:
    """SIGINT cancels the main task; its CancelledError becomes
    KeyboardInterrupt. A main task that swallows the cancellation gets
    KeyboardInterrupt raised at the second SIGINT. Either way the leftover
    task is cancelled, the SIGINT handler restored, and the process dies of
    SIGINT."""
    script = tmp_path / "prog.py"
    script.write_text(SIGINT_PROGRAM)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TIDELOOP_BACKEND", None)
    with subprocess.Popen(
        [sys.executable, str(script), entry, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            ready = proc.stdout.readline()
            loop_type = "EventLoop" if entry == "tideloop.run" else "_UnixSelectorEventLoop"
            assert ready == f"ready {loop_type}\n"
            # Each SIGINT once the loop sleeps in its poll: one that lands just
            # before it is a lost wakeup on stock asyncio (test_signals.py).
            wait_until_blocked_in_poll(proc.pid, proc.pid)
            os.kill(proc.pid, signal.SIGINT)
            lines = [proc.stdout.readline()]
            if mode == "stubborn":
                lines.append(proc.stdout.readline())
                assert lines == ["main cancelled\n", "ignoring it\n"]
                wait_until_blocked_in_poll(proc.pid, proc.pid)
                os.kill(proc.pid, signal.SIGINT)
            # Not communicate(): it would bypass what readline() has buffered.
            out = proc.stdout.read()
            err = proc.stderr.read()
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    lines += out.splitlines(keepends=True)
    assert lines[0] == "main cancelled\n"
    assert lines[-2:] == ["leftover cleaned up\n", "KeyboardInterrupt True\n"]
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert proc.returncode == -signal.SIGINT


# -- asyncio.Runner / asyncio.run with tideloop as the loop factory ----------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_with_tideloop_factory(backend: str) -> None:
    factory = functools.partial(tideloop.new_event_loop, backend=backend)
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)

    async def bump() -> int:
        var.set(var.get() + 1)
        return var.get()

    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()
        assert type(loop) is tideloop.EventLoop
        assert loop.stats()["backend"] == backend  # type: ignore[attr-defined]
        # One loop for every run() and the runner's own context between them.
        assert runner.run(bump()) == 1
        assert runner.run(bump()) == 2
        assert runner.run(bump(), context=contextvars.Context()) == 1
        assert runner.get_loop() is loop
    assert loop.is_closed()


def test_runner_with_tideloop_factory_debug() -> None:
    with asyncio.Runner(debug=True, loop_factory=tideloop.new_event_loop) as runner:
        assert runner.get_loop().get_debug() is True


@pytest.mark.skipif(not PY312, reason="asyncio.run(loop_factory=) is new in Python 3.12")
def test_asyncio_run_with_tideloop_factory() -> None:
    async def main() -> type[asyncio.AbstractEventLoop]:
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=tideloop.new_event_loop) is tideloop.EventLoop  # type: ignore[call-arg]
    factory = functools.partial(tideloop.new_event_loop, backend="select")
    assert asyncio.run(main(), loop_factory=factory) is tideloop.EventLoop  # type: ignore[call-arg]


# -- the legacy policy path -------------------------------------------------------------


@pytest.fixture(params=["asyncio", "tideloop"])
def policy(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoopPolicy]:
    """A fresh policy installed: stock asyncio's (the oracle) or tideloop's."""
    previous = asyncio.get_event_loop_policy()
    cls = asyncio.DefaultEventLoopPolicy if request.param == "asyncio" else tideloop.EventLoopPolicy
    pol = cls()
    asyncio.set_event_loop_policy(pol)
    try:
        yield pol
    finally:
        asyncio.set_event_loop_policy(previous)


def policy_loop_type(policy: asyncio.AbstractEventLoopPolicy) -> type[asyncio.AbstractEventLoop]:
    if isinstance(policy, tideloop.EventLoopPolicy):
        return tideloop.EventLoop
    return asyncio.SelectorEventLoop


def test_policy_is_asyncios_default_policy() -> None:
    assert issubclass(tideloop.EventLoopPolicy, asyncio.DefaultEventLoopPolicy)
    assert issubclass(tideloop.EventLoopPolicy, asyncio.AbstractEventLoopPolicy)


def test_get_event_loop_policy_returns_the_installed_one(
    policy: asyncio.AbstractEventLoopPolicy,
) -> None:
    assert asyncio.get_event_loop_policy() is policy


def test_policy_new_event_loop(policy: asyncio.AbstractEventLoopPolicy) -> None:
    loops = [policy.new_event_loop(), policy.new_event_loop(), asyncio.new_event_loop()]
    try:
        for loop in loops:
            assert isinstance(loop, policy_loop_type(policy))
        assert len({id(loop) for loop in loops}) == 3
        # new_event_loop does not make the loop current.
        with pytest.raises(RuntimeError, match="no running event loop"):
            asyncio.get_running_loop()
    finally:
        for loop in loops:
            loop.close()


@pytest.mark.parametrize("via", ["asyncio.get_event_loop", "policy.get_event_loop"])
def test_get_event_loop_creates_main_thread_loop_implicitly(
    policy: asyncio.AbstractEventLoopPolicy, via: str
) -> None:
    get = asyncio.get_event_loop if via == "asyncio.get_event_loop" else policy.get_event_loop
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        loop = get()
        again = get()
    try:
        assert isinstance(loop, policy_loop_type(policy))
        assert again is loop
        expected = (
            [(DeprecationWarning, "There is no current event loop", "test_runner.py")]
            if IMPLICIT_LOOP_WARNS
            else []
        )
        # Only the first call warns, and the warning points at the caller.
        assert _warnings(records) == expected
        # The legacy pattern works on it.
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        policy.set_event_loop(None)
        loop.close()


def test_get_event_loop_after_set_event_loop_none(
    policy: asyncio.AbstractEventLoopPolicy,
) -> None:
    policy.set_event_loop(None)
    message = "There is no current event loop in thread 'MainThread'."
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError) as info:
            asyncio.get_event_loop()
        assert str(info.value) == message
        with pytest.raises(RuntimeError) as info:
            policy.get_event_loop()
        assert str(info.value) == message
    assert records == []


def test_set_event_loop_then_get(policy: asyncio.AbstractEventLoopPolicy) -> None:
    loop = policy.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            assert asyncio.get_event_loop() is loop
            assert policy.get_event_loop() is loop
        assert records == []
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_set_event_loop_and_policy_type_checks(policy: asyncio.AbstractEventLoopPolicy) -> None:
    with pytest.raises(TypeError) as info:
        policy.set_event_loop(1)  # type: ignore[arg-type]
    assert str(info.value) == "loop must be an instance of AbstractEventLoop or None, not 'int'"
    with pytest.raises(TypeError) as info:
        asyncio.set_event_loop_policy(1)  # type: ignore[arg-type]
    assert str(info.value) == (
        "policy must be an instance of AbstractEventLoopPolicy or None, not 'int'"
    )
    assert asyncio.get_event_loop_policy() is policy


def test_get_event_loop_inside_a_running_loop(policy: asyncio.AbstractEventLoopPolicy) -> None:
    """Inside a running loop asyncio.get_event_loop() is the running loop, with
    no warning, whether or not that loop is the policy's current one."""
    loop = policy.new_event_loop()
    try:

        async def main() -> tuple[bool, bool]:
            running = asyncio.get_running_loop()
            in_callback: asyncio.Future[bool] = running.create_future()
            running.call_soon(lambda: in_callback.set_result(asyncio.get_event_loop() is running))
            return asyncio.get_event_loop() is running, await in_callback

        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            assert loop.run_until_complete(main()) == (True, True)
        assert records == []
    finally:
        loop.close()


def test_asyncio_run_and_runner_use_the_policy(policy: asyncio.AbstractEventLoopPolicy) -> None:
    async def main() -> tuple[type[asyncio.AbstractEventLoop], bool]:
        running = asyncio.get_running_loop()
        # asyncio.run (no factory) makes its loop the policy's current loop.
        return type(running), policy.get_event_loop() is running

    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        loop_type, current = asyncio.run(main())
        assert issubclass(loop_type, policy_loop_type(policy)) and current
        with asyncio.Runner() as runner:
            assert isinstance(runner.get_loop(), policy_loop_type(policy))
            assert runner.run(main())[1] is True
    assert records == []
    # Both unset the current loop when they finish: nothing implicit afterwards.
    with pytest.raises(RuntimeError, match="There is no current event loop in thread"):
        asyncio.get_event_loop()


def test_loop_per_thread(policy: asyncio.AbstractEventLoopPolicy) -> None:
    """Each thread has its own current loop; only the main thread gets one
    implicitly."""
    results: dict[str, Any] = {}

    def worker() -> None:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            try:
                asyncio.get_event_loop()
            except RuntimeError as exc:
                results["implicit"] = str(exc)
        results["warnings"] = _warnings(records)
        loop = policy.new_event_loop()
        policy.set_event_loop(loop)
        try:
            results["same"] = asyncio.get_event_loop() is loop
            results["ran_in"] = loop.run_until_complete(_thread_name())
            results["type"] = type(loop)
        finally:
            policy.set_event_loop(None)
            loop.close()

    main_loop = policy.new_event_loop()
    policy.set_event_loop(main_loop)
    try:
        thread = threading.Thread(target=worker, name="worker")
        thread.start()
        thread.join()
        assert results["implicit"] == "There is no current event loop in thread 'worker'."
        assert results["warnings"] == []
        assert results["same"] is True
        assert results["ran_in"] == "worker"
        assert issubclass(results["type"], policy_loop_type(policy))
        # The worker's set_event_loop did not touch the main thread's loop.
        assert policy.get_event_loop() is main_loop
    finally:
        policy.set_event_loop(None)
        main_loop.close()


async def _thread_name() -> str:
    return threading.current_thread().name


def test_subclassed_policy_configures_its_loops(fresh_policy: None) -> None:
    class Configured(tideloop.EventLoopPolicy):  # type: ignore[misc,valid-type]
        def new_event_loop(self) -> tideloop.EventLoop:
            loop = super().new_event_loop()
            loop.slow_callback_duration = 0.25
            return loop

    asyncio.set_event_loop_policy(Configured())

    async def main() -> float:
        return asyncio.get_running_loop().slow_callback_duration

    assert asyncio.run(main()) == 0.25


def test_install(fresh_policy: None) -> None:
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        tideloop.install()
        installed = asyncio.get_event_loop_policy()

        async def main() -> type[asyncio.AbstractEventLoop]:
            return type(asyncio.get_running_loop())

        loop_type = asyncio.run(main())
    assert records == []  # no warnings on Python 3.11-3.13
    assert type(installed) is tideloop.EventLoopPolicy
    assert loop_type is tideloop.EventLoop
    # Each install() is a fresh policy.
    tideloop.install()
    assert asyncio.get_event_loop_policy() is not installed


def test_policy_deprecated_from_3_14(fresh_policy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 3.14+ code path (Python 3.14 itself is not available here): both
    entry points warn, pointing at the caller, and still work."""
    monkeypatch.setattr(_runner, "_POLICY_DEPRECATED", True)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        tideloop.install()
        policy = tideloop.EventLoopPolicy()
    assert [(w.category, os.path.basename(w.filename)) for w in records] == [
        (DeprecationWarning, "test_runner.py"),
        (DeprecationWarning, "test_runner.py"),
    ]
    assert str(records[0].message).startswith("tideloop.install() is deprecated")
    assert str(records[1].message).startswith("tideloop.EventLoopPolicy is deprecated")
    assert "loop_factory=tideloop.new_event_loop" in str(records[0].message)
    assert type(asyncio.get_event_loop_policy()) is tideloop.EventLoopPolicy
    loop = policy.new_event_loop()
    loop.close()
    assert type(loop) is tideloop.EventLoop


@pytest.mark.parametrize("flags", [["-W", "error"], ["-X", "dev", "-W", "error"]])
def test_import_warns_nothing(flags: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, *flags, "-c", "import tideloop, tideloop.__main__"],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
