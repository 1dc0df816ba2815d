"""Worker: runs one conformance suite in its own process (started by ``run.py``).

Usage (internal)::

    python tests/conformance/_worker.py --suite NAME --loop tideloop \\
        --events EVENTS.jsonl --faulthandler FH.txt [--exclude IDS.json] \\
        [--backend B] [--test-timeout S] [--collect-only] [-k SUBSTR]...

What it does, in order:

1. installs the loop under test as the default-policy loop factory
   (``_loops.install_default_factory``) and a small harness shim (below);
2. builds the suite (``_suites.build``), flattens it, writes a ``collected``
   event with every test id, drops the ids listed in ``--exclude`` (tests an
   earlier attempt already reported, or that hung it);
3. runs the tests with :class:`StreamingResult`, which appends one JSON line
   per event to ``--events`` with a single ``os.write`` (so the parent can
   read every event that happened before a crash or a kill): ``start`` before
   each test, ``end`` after it (raw outcome, short message, traceback for
   failures, duration, whether the test created a loop of the kind under
   test), ``fixture`` for setUpClass/setUpModule problems, ``done`` at the end;
4. arms ``faulthandler.dump_traceback_later(test_timeout, exit=True)`` around
   every test: a hung test makes the process dump all thread stacks into
   ``--faulthandler`` and exit. The parent sees a ``start`` with no ``end``,
   records that test as timed out, and starts a new worker that skips the
   tests already done. One hang costs one test, not the suite.

The worker does not know about expected failures: it reports raw outcomes and
``run.py`` applies ``xfail.py``.

Harness shim: ``test_utils.TestCase.close_loop`` (the cleanup of most
upstream loop tests) reads ``loop._default_executor``, a private attribute of
``asyncio.BaseEventLoop``. For a loop without that attribute, the shim does
the equivalent through public API (``shutdown_default_executor()`` if the
loop is still open, then ``close()``); for loops that have it, the upstream
code runs unchanged.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import sys
import time
import traceback
import unittest
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _loops
import _suites
import xfail

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

MAX_DETAIL = 20_000
MAX_SHORT = 400


class EventSink:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(self, **event: Any) -> None:
        line = json.dumps(event, default=str) + "\n"
        os.write(self.fd, line.encode("utf-8", "backslashreplace"))


def _short(err: ExcInfo) -> str:
    lines = traceback.format_exception_only(err[0], err[1])
    text = "".join(lines).strip().splitlines()
    # The exception line plus, for multi-line messages, the first lines.
    short = " | ".join(line.strip() for line in text[:4] if line.strip())
    return short[:MAX_SHORT]


class _TestState:
    __slots__ = ("details", "kind", "loops_before", "reason", "shorts", "t0", "test_id")

    def __init__(self, test_id: str, loops_before: int) -> None:
        self.test_id = test_id
        self.loops_before = loops_before
        self.t0 = time.perf_counter()
        self.kind = "passed"
        self.reason = ""
        self.shorts: list[str] = []
        self.details: list[str] = []


#: Raw outcomes, worst last: a test's outcome is the worst thing that happened.
_RANK = {
    "passed": 0,
    "skipped": 1,
    "unexpected_success": 2,
    "expected_failure": 3,
    "failure": 4,
    "error": 5,
}


class StreamingResult(unittest.TestResult):
    """A TestResult that streams one event per test to an :class:`EventSink`."""

    def __init__(
        self,
        sink: EventSink,
        fh_file: TextIO,
        timeout_for: Callable[[str], float],
    ) -> None:
        super().__init__()
        self.sink = sink
        self.timeout_for = timeout_for
        self.fh_file = fh_file
        self.buffer = True  # captured output goes into the failure text
        self.state: _TestState | None = None

    # -- lifecycle ---------------------------------------------------------
    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self.state = _TestState(test.id(), _loops.LoopCounter.created)
        timeout = self.timeout_for(test.id())
        self.sink.emit(event="start", id=test.id(), t=time.time(), timeout=timeout)
        if timeout > 0:
            faulthandler.dump_traceback_later(timeout, exit=True, file=self.fh_file)

    def stopTest(self, test: unittest.TestCase) -> None:
        faulthandler.cancel_dump_traceback_later()
        self._emit_end()
        super().stopTest(test)

    def _emit_end(self) -> None:
        state = self.state
        self.state = None
        if state is None:  # pragma: no cover - defensive
            return
        self.sink.emit(
            event="end",
            id=state.test_id,
            outcome=state.kind,
            reason=state.reason,
            short=" || ".join(state.shorts)[: MAX_SHORT * 2],
            detail="\n".join(state.details)[:MAX_DETAIL],
            duration=round(time.perf_counter() - state.t0, 4),
            on_loop=_loops.LoopCounter.created > state.loops_before,
        )

    # -- outcomes ----------------------------------------------------------
    def _record(self, kind: str, test: Any, err: ExcInfo | None = None, reason: str = "") -> None:
        state = self.state
        if state is None and isinstance(test, unittest.TestCase):
            # 3.12.1 reports tests of a skipped class without startTest().
            self.state = _TestState(test.id(), _loops.LoopCounter.created)
            self._record(kind, test, err, reason)
            self._emit_end()
            return
        if state is None or state.test_id != test.id():
            # Class/module fixture problems arrive without startTest.
            self._fixture(kind, test, err, reason)
            return
        if _RANK[kind] >= _RANK[state.kind]:
            state.kind = kind
        if reason:
            state.reason = reason
        if err is not None:
            state.shorts.append(_short(err))
            state.details.append(self._exc_info_to_string(err, test))

    def _fixture(self, kind: str, test: Any, err: ExcInfo | None, reason: str) -> None:
        detail = ""
        short = reason
        if err is not None:
            short = _short(err)
            detail = "".join(traceback.format_exception(*err))[:MAX_DETAIL]
        self.sink.emit(
            event="fixture",
            id=str(test),
            outcome=kind,
            reason=reason,
            short=short,
            detail=detail,
        )

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._record("passed", test)

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        self._record("error", test, err)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._record("failure", test, err)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._record("skipped", test, reason=reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._record("expected_failure", test, err)

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._record("unexpected_success", test)

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        if err is None:
            return
        kind = "failure" if issubclass(err[0], test.failureException) else "error"
        state = self.state
        if state is not None and state.test_id == test.id():
            if _RANK[kind] >= _RANK[state.kind]:
                state.kind = kind
            state.shorts.append(f"{subtest._subDescription()}: {_short(err)}")  # type: ignore[attr-defined]
            state.details.append(f"{subtest}\n{self._exc_info_to_string(err, test)}")
        else:  # pragma: no cover - defensive
            self._fixture(kind, subtest, err, "")


class _ClosedLoopStandIn:
    """Lets the tail of the upstream ``close_loop`` (child-watcher wait) run."""

    _default_executor = None

    def is_closed(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _install_close_loop_shim() -> None:
    utils = importlib.import_module(f"{_suites.PACKAGE}.utils")
    original = utils.TestCase.close_loop

    def close_loop(loop: Any) -> None:
        if hasattr(loop, "_default_executor"):
            original(loop)
            return
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        original(_ClosedLoopStandIn())

    utils.TestCase.close_loop = staticmethod(close_loop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--loop", choices=_loops.LOOP_KINDS, default="tideloop")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--events", required=True)
    parser.add_argument("--faulthandler", required=True)
    parser.add_argument("--exclude", default=None)
    parser.add_argument("--test-timeout", type=float, default=60.0)
    parser.add_argument("--xfail-timeout", type=float, default=8.0)
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("-k", dest="keywords", action="append", default=[])
    args = parser.parse_args(argv)

    sink = EventSink(args.events)
    fh_file = open(args.faulthandler, "a")
    faulthandler.enable(file=fh_file, all_threads=True)

    info: dict[str, Any] = {"python": sys.version.split()[0], "loop": args.loop}
    if args.loop == "tideloop":
        tideloop = _loops.import_tideloop()
        info["tideloop"] = getattr(tideloop, "__file__", "?")
        info["tideloop_version"] = getattr(tideloop, "__version__", "?")
    _loops.install_default_factory(_loops.make_factory(args.loop, args.backend))
    _install_close_loop_shim()

    suite = _suites.get_suite(args.suite)
    built, note = _suites.build(suite, args.loop, args.backend)
    tests = list(_suites.iter_tests(built))
    if args.keywords:
        tests = [t for t in tests if any(k in t.id() for k in args.keywords)]
    sink.emit(event="collected", ids=[t.id() for t in tests], note=note, **info)
    if args.collect_only:
        sink.emit(event="done")
        return 0

    excluded: set[str] = set()
    if args.exclude:
        excluded = set(json.loads(Path(args.exclude).read_text()))
    runnable = unittest.TestSuite(t for t in tests if t.id() not in excluded)

    def timeout_for(test_id: str) -> float:
        if xfail.find(test_id, args.loop) is not None:
            return min(args.test_timeout, args.xfail_timeout)
        return float(args.test_timeout)

    result = StreamingResult(sink, fh_file, timeout_for)
    runnable.run(result)
    sink.emit(event="done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: leftover threads/loops of a broken test must
    # not be able to hang the worker after all results are written.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
