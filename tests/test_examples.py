"""The programs in examples/ and the code blocks of docs/, so neither can rot.

Each example is imported and its ``main()`` run with a loop factory from the
usual matrix: stock asyncio (the oracle: the example must behave the same
there, using asyncio's real APIs only) and tideloop with every backend. The
tests assert what the example is about (results, ordering, limits), not its
printout. Each example also runs once as a script, as a reader would run it.

Docs: a fenced ``python`` block that follows a ``<!-- run -->`` comment is
executed as a script (in a subprocess, warnings as errors). Options go in the
comment: ``<!-- run: python>=3.12 requires=trustme -->``. When the block is
followed by ``<!-- output -->`` and a fenced block, that block is the exact
expected stdout; stderr must stay empty. Every other ``python`` block must say why it does not run
(``<!-- no-run: reason -->``), so that new examples are runnable by default.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tideloop

from .conftest import LoopFactory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
SRC = ROOT / "src"


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # pragma: no cover - not Linux
        return set()


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Import an example by name (examples/ on sys.path, as when run as a
    script: process-pool workers import it the same way)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    before = _open_fds()
    yield importlib.import_module
    gc.collect()
    leaked = _open_fds() - before
    assert not leaked, f"file descriptors leaked: {sorted(leaked)}"


def expected_loop_type(loop_kind: str) -> type[asyncio.AbstractEventLoop]:
    return asyncio.SelectorEventLoop if loop_kind == "asyncio" else tideloop.EventLoop


def expected_backend(loop_kind: str) -> str | None:
    return loop_kind.split("-", 1)[1] if loop_kind.startswith("tideloop") else None


# -- configured_loops.py ------------------------------------------------------------


@pytest.mark.timeout(30)
def test_configured_loops(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory, loop_kind: str
) -> None:
    mod = example("configured_loops")
    policy_before = asyncio.get_event_loop_policy()
    # Not asyncio.new_event_loop: it asks the policy, which here asks the factory.
    base = asyncio.SelectorEventLoop if loop_kind == "asyncio" else loop_factory
    config, reports = mod.main(base=base)
    assert asyncio.get_event_loop_policy() is policy_before
    assert len(reports) == 2  # one loop from the factory, one from the policy
    for report in reports:
        assert issubclass(report.loop_type, expected_loop_type(loop_kind))
        assert report.debug is True
        assert report.slow_callback_duration == 0.05
        assert report.executor_thread.startswith("app-io")
        assert report.backend == expected_backend(loop_kind)
    # Every loop had the handler: one error each, with asyncio's context keys.
    assert len(config.errors) == 2
    for context in config.errors:
        assert context["message"].startswith("Exception in callback")
        assert repr(context["exception"]) == "RuntimeError('boom')"
        assert "handle" in context
    # The loops' executors were shut down with the loops.
    assert not [t for t in threading.enumerate() if t.name.startswith("app-io")]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", tideloop.available_backends())
def test_configured_loops_backend_setting(
    example: Callable[[str], ModuleType], backend: str
) -> None:
    mod = example("configured_loops")
    config = mod.LoopConfig(backend=backend, debug=False)
    with asyncio.Runner(loop_factory=mod.make_loop_factory(config)) as runner:
        report = runner.run(mod.probe())
    assert report.loop_type is tideloop.EventLoop
    assert report.backend == backend
    assert report.debug is False
    assert len(config.errors) == 1


# -- loop_in_thread.py --------------------------------------------------------------


@pytest.mark.timeout(30)
def test_loop_in_thread(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory, loop_kind: str
) -> None:
    mod = example("loop_in_thread")
    report = mod.main(loop_factory)
    assert report.caller_thread == threading.current_thread().name
    assert report.loop_thread == "loop-thread"
    assert report.loop_type == expected_loop_type(loop_kind).__name__
    assert report.squares == [0, 1, 4, 9, 16]
    assert report.concurrent_squares == [25, 36, 49, 64, 81]
    assert report.error == "bad input"
    # Clean shutdown: the leftover coroutine was cancelled and ran its
    # cleanup, the loop is closed and the thread is gone.
    assert report.leftover_cancelled is True
    assert report.cleaned_up is True
    assert report.thread_alive_after_stop is False
    assert report.loop_closed_after_stop is True


@pytest.mark.timeout(30)
def test_loop_in_thread_refuses_work_after_stop(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("loop_in_thread")
    worker = mod.LoopThread(loop_factory)
    with pytest.raises(RuntimeError, match="not running"):
        worker.submit(mod.square(1))  # not started yet
    with worker:
        assert worker.call(mod.square(3)) == 9
    coro = mod.square(2)
    with pytest.raises(RuntimeError, match="not running"):
        worker.submit(coro)
    # submit() closed the coroutine: no "never awaited" warning later.
    assert coro.cr_frame is None
    worker.stop()  # stopping twice is harmless


@pytest.mark.timeout(30)
def test_loop_in_thread_loop_factory_failure(example: Callable[[str], ModuleType]) -> None:
    mod = example("loop_in_thread")

    def broken() -> asyncio.AbstractEventLoop:
        raise OSError("no loop today")

    with pytest.raises(OSError, match="no loop today"):
        mod.LoopThread(broken).start()


# -- process_pool.py ----------------------------------------------------------------


PROCESS_POOL_PROGRAM = """
import asyncio, dataclasses, json, sys
import tideloop
import process_pool

if __name__ == "__main__":  # spawned workers import this module too
    kind = sys.argv[1]
    if kind == "asyncio":
        factory = asyncio.new_event_loop
    else:
        backend = kind.split("-", 1)[1]
        factory = lambda: tideloop.new_event_loop(backend=backend)
    report = process_pool.main(factory, limit=100_000, workers=2)
    fields = dataclasses.asdict(report)
    fields["worker_pids"] = sorted(fields["worker_pids"])
    print(json.dumps(fields))
"""


@pytest.mark.timeout(60)
def test_process_pool(loop_kind: str, tmp_path: Path) -> None:
    # In a child process: a process pool starts multiprocessing's resource
    # tracker, a child process that would outlive the test (and fail the
    # "no leftover children" checks of later tests).
    script = tmp_path / "run_pool.py"
    script.write_text(PROCESS_POOL_PROGRAM)
    env = _env()
    env["PYTHONPATH"] = str(EXAMPLES) + os.pathsep + env["PYTHONPATH"]
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script), loop_kind],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["primes"] == 9592  # pi(10**5)
    assert report["chunks"] == 8
    assert report["parent_pid"] not in report["worker_pids"]
    assert 1 <= len(report["worker_pids"]) <= 2
    assert report["heartbeats"] >= 1  # the loop kept running other tasks
    assert report["error"] == "-1 is not positive"
    assert report["loop_type"] == expected_loop_type(loop_kind).__name__


# -- task_limit.py ------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("limit", [1, 4])
def test_task_limit(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory, limit: int
) -> None:
    mod = example("task_limit")
    report = mod.main(loop_factory, limit=limit, producers=3, jobs_each=20)
    assert sorted(report.results) == list(range(60))
    # Never more than `limit` running, and the limit was reached.
    assert report.max_running == limit
    assert report.max_alive == limit
    # Back-pressure: the producers were made to wait for slots.
    assert report.producer_waits > 0
    assert report.running == 0


@pytest.mark.timeout(30)
def test_task_limit_no_wait_below_limit(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("task_limit")
    report = mod.main(loop_factory, limit=10, producers=2, jobs_each=3)
    assert sorted(report.results) == list(range(6))
    assert report.max_running == 6
    assert report.producer_waits == 0


@pytest.mark.timeout(30)
def test_task_limit_error_cancels_the_rest(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("task_limit")
    cancelled: list[int] = []

    async def job(n: int) -> None:
        if n == 2:
            raise KeyError(n)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    async def demo() -> Any:
        group = mod.BoundedTaskGroup(3)
        async with group:
            for n in range(10):
                await group.spawn(job, n)
        return group

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        with pytest.raises(BaseExceptionGroup) as info:
            runner.run(demo())
    assert [type(e) for e in info.value.exceptions] == [KeyError]
    # Jobs 0 and 1 were running; nothing after the failure was started.
    assert sorted(cancelled) == [0, 1]


def test_task_limit_rejects_bad_limit(example: Callable[[str], ModuleType]) -> None:
    mod = example("task_limit")
    with pytest.raises(ValueError, match="at least 1"):
        mod.BoundedTaskGroup(0)


# -- priority_work.py ---------------------------------------------------------------

EXPECTED_START_ORDER = [
    "urgent-0",
    "urgent-1",
    "urgent-2",
    "normal-0",
    "normal-1",
    "urgent-late",  # submitted while normal-0 ran: before the normals still waiting
    "normal-2",
    "normal-3",
    "background-0",
    "background-1",
    "background-2",
    "background-3",
]


@pytest.mark.timeout(30)
def test_priority_work(example: Callable[[str], ModuleType], loop_factory: LoopFactory) -> None:
    mod = example("priority_work")
    report = mod.main(loop_factory, workers=2)
    assert report.started == EXPECTED_START_ORDER
    assert report.results == {name: name.upper() for name in EXPECTED_START_ORDER}
    # Fairness for everything else: the unrelated task ran all its steps,
    # and between the first and the last work item, not only after them.
    assert report.log.count("tick") == 10
    first = report.log.index("urgent-0")
    last = report.log.index("background-3")
    assert "tick" in report.log[first:last]


@pytest.mark.timeout(30)
def test_priority_work_single_worker(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("priority_work")
    report = mod.main(loop_factory, workers=1)
    order = [name for name in report.started if name != "urgent-late"]
    rank = {"urgent": 0, "normal": 1, "background": 2}
    # Initially queued items start strictly by (priority, submission order).
    assert order == sorted(order, key=lambda n: (rank[n.split("-")[0]], int(n.split("-")[1])))
    late = report.started.index("urgent-late")
    assert report.started[late - 1] == "normal-0"  # the very next item taken


@pytest.mark.timeout(30)
def test_priority_pool_errors_and_cancelled_items(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("priority_work")
    ran: list[str] = []

    async def job(name: str) -> str:
        ran.append(name)
        if name == "bad":
            raise ValueError(name)
        return name

    async def demo() -> tuple[Any, Any]:
        async with mod.PriorityWorkerPool(1) as pool:
            bad = pool.submit(1, job, "bad")
            skipped = pool.submit(2, job, "skipped")
            good = pool.submit(3, job, "good")
            skipped.cancel()
        return bad, good

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        bad, good = runner.run(demo())
    assert ran == ["bad", "good"]
    assert isinstance(bad.exception(), ValueError)
    assert good.result() == "good"


# -- error_policy.py ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_error_policy(
    example: Callable[[str], ModuleType],
    loop_factory: LoopFactory,
    loop_kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mod = example("error_policy")
    with caplog.at_level("ERROR", logger="asyncio"):
        report = mod.main(loop_factory)
    assert report.counts == {"ZeroDivisionError": 1, "ValueError": 1, "DiskFullError": 1}
    assert report.escalated == "fatal error: DiskFullError('no space left on device')"
    assert report.cause == "DiskFullError('no space left on device')"
    assert report.app_cancelled is True
    # Logged as asyncio's default handler logs them.
    messages = [r.getMessage().splitlines()[0] for r in caplog.records if r.name == "asyncio"]
    assert messages[0].startswith("Exception in callback flaky_callback()")
    assert messages[1] == "Task exception was never retrieved"
    assert messages[2].startswith("Exception in callback disk_full()")
    assert len(messages) == 3


@pytest.mark.timeout(30)
def test_error_policy_budget(
    example: Callable[[str], ModuleType],
    loop_factory: LoopFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mod = example("error_policy")
    policy = mod.ErrorPolicy(max_errors=2)

    async def app() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(5):
            loop.call_soon(mod.flaky_callback)
        await asyncio.Event().wait()

    with caplog.at_level("CRITICAL", logger="asyncio"):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            with pytest.raises(mod.EscalatedError, match="more than 2 unhandled errors"):
                runner.run(mod.supervise(policy, app()))
    # The callbacks queued in the same iteration still ran (and were counted).
    assert policy.counts == {"ZeroDivisionError": 5}


@pytest.mark.timeout(30)
def test_error_policy_app_finishes_first(
    example: Callable[[str], ModuleType], loop_factory: LoopFactory
) -> None:
    mod = example("error_policy")

    async def app() -> str:
        return "done"

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(mod.supervise(mod.ErrorPolicy(), app())) == "done"


# -- every example, as a script -----------------------------------------------------


def _env() -> dict[str, str]:
    """The environment a reader runs the code in: tideloop importable, no
    backend forced, and no debug mode (whose slow-callback warnings would
    turn up on stderr when CI runs the suite with PYTHONASYNCIODEBUG=1)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("TIDELOOP_BACKEND", "PYTHONASYNCIODEBUG", "PYTHONDEVMODE"):
        env.pop(name, None)
    return env


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_runs_as_script(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(path)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "EventLoop" in proc.stdout  # it ran on tideloop


def test_every_example_has_main() -> None:
    paths = sorted(EXAMPLES.glob("*.py"))
    assert len(paths) >= 6
    for path in paths:
        text = path.read_text()
        assert "\ndef main(" in text, path.name
        assert 'if __name__ == "__main__":' in text, path.name


# -- docs -----------------------------------------------------------------------------

_RUN = re.compile(r"^<!--\s*run(?::\s*(?P<opts>.*?))?\s*-->\s*$")
_NO_RUN = re.compile(r"^<!--\s*no-run:\s*\S.*-->\s*$")
_OUTPUT = re.compile(r"^<!--\s*output\s*-->\s*$")
_OPTION = re.compile(r"^(?P<key>[\w-]+)(?P<op>>=|=)(?P<value>\S+)$")
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)\s*$")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the fence
    lang: str
    code: str
    marker: str  # "run", "no-run" or ""
    options: dict[str, str]
    output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    marker, options = "", {}
    i = 0
    while i < len(lines):
        line = lines[i]
        run = _RUN.match(line)
        if run:
            marker = "run"
            options = {}
            for opt in (run.group("opts") or "").split():
                m = _OPTION.match(opt)
                assert m, f"{page.name}:{i + 1}: bad option {opt!r}"
                key = m.group("key") + (">=" if m.group("op") == ">=" else "")
                options[key] = m.group("value")
            i += 1
            continue
        if _NO_RUN.match(line):
            marker, options = "no-run", {}
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            start = i
            close = fence.group("fence")
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != close:
                body.append(lines[i])
                i += 1
            block = Block(
                page.name, start + 1, fence.group("lang"), "\n".join(body) + "\n", marker, options
            )
            if start and _OUTPUT.match(lines[start - 1]):
                assert blocks and blocks[-1].marker == "run", f"{block.id}: output of what?"
                blocks[-1].output = block.code
            else:
                blocks.append(block)
            marker, options = "", {}
            i += 1
            continue
        if line.strip():
            # Text between a marker and its block detaches the marker,
            # except for the output marker handled above.
            if not _OUTPUT.match(line):
                marker, options = "", {}
        i += 1
    return blocks


def _doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _runnable_blocks() -> list[Block]:
    return [b for page in _doc_pages() for b in parse_blocks(page) if b.marker == "run"]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("block", _runnable_blocks(), ids=lambda b: b.id)
def test_docs_code_block_runs(block: Block, tmp_path: Path) -> None:
    assert block.lang == "python", f"{block.id}: only python blocks can be marked run"
    minimum = block.options.get("python>=")
    if minimum and sys.version_info < _version(minimum):
        pytest.skip(f"needs Python {minimum}+")
    for module in filter(None, block.options.get("requires", "").split(",")):
        pytest.importorskip(module)
    script = tmp_path / "block.py"
    script.write_text(block.code)
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.returncode == 0, f"{block.id} failed:\n{proc.stdout}\n{proc.stderr}"
    # Nothing logged either: an example that leaves errors behind is a bad example.
    assert proc.stderr == "", f"{block.id} wrote to stderr:\n{proc.stderr}"
    if block.output is not None:
        assert proc.stdout == block.output, f"{block.id}: output differs"


def test_docs_python_blocks_are_run_or_say_why() -> None:
    unmarked = [
        b.id
        for page in _doc_pages()
        for b in parse_blocks(page)
        if b.lang == "python" and not b.marker
    ]
    assert not unmarked, f"python blocks without <!-- run --> or <!-- no-run: why -->: {unmarked}"


def test_docs_have_runnable_blocks() -> None:
    assert len(_doc_pages()) >= 10
    assert len(_runnable_blocks()) >= 15


_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", _doc_pages(), ids=lambda p: p.name)
def test_docs_relative_links_resolve(page: Path) -> None:
    text = page.read_text()
    missing = [
        m.group("target")
        for m in _LINK.finditer(text)
        if "://" not in m.group("target") and not (page.parent / m.group("target")).exists()
    ]
    assert not missing, f"{page.name}: broken links {missing}"
