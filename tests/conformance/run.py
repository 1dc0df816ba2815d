#!/usr/bin/env python3
"""Run CPython's own asyncio test-suite (``test.test_asyncio``) against tideloop.

Usage, from the repository root (tideloop installed, or found in ``src/``)::

    python tests/conformance/run.py                   # every suite, on tideloop
    python tests/conformance/run.py --loop asyncio    # same suites on stock asyncio
    python tests/conformance/run.py --list            # suites of this Python
    python tests/conformance/run.py --suite mixin-sock_lowlevel --list   # test ids
    python tests/conformance/run.py --suite 'mixin-*' -v -k test_sock_accept
    python tests/conformance/run.py --json report.json   # or --json for stdout

The tests come from the interpreter running this script (3.11, 3.12 and 3.13
ship slightly different ones); run it with each interpreter to cover them.

How it works
------------
* Suites (``_suites.py``): ``mixin-*`` suites derive CPython's loop-agnostic
  test mixins (``EventLoopTestsMixin``, ``BaseSockTestsMixin``,
  ``SendfileTestsBase``, ``BaseStartServer``, ``BaseStartTLS``,
  ``BaseTestBufferedProtocol``, ``SubprocessMixin``) with a factory returning
  the loop under test, once per backend where upstream does it once per
  selector. ``test_*`` suites run whole upstream modules, with the loop under
  test installed as the default policy's loop factory (``_loops.py`` explains
  why the policy *class* is patched), so ``asyncio.new_event_loop()``,
  ``asyncio.run()`` and ``IsolatedAsyncioTestCase`` all use it.
* Isolation (``_worker.py``): every suite runs in its own subprocess, ``-j``
  at a time. A per-test ``faulthandler`` watchdog (``--test-timeout``) turns a
  hang into a dumped stack and a process exit; this script records that test
  as a timeout error and restarts the suite after it (``--max-restarts``).
  ``--suite-timeout`` bounds a whole suite's wall-clock time (the process
  group is killed).
* Expected failures (``xfail.py``): applied here to the raw outcomes the
  workers report. Listed failures count as ``xfail``; listed tests that pass
  count as ``xpass`` (non-fatal, printed so the list can shrink). Upstream
  ``@expectedFailure``/unexpected successes are counted the same way.
* Exit status: 0 when no test failed or errored outside the xfail list (and
  every suite ran to completion), 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _loops  # noqa: E402
import _suites  # noqa: E402
import xfail  # noqa: E402

WORKER = HERE / "_worker.py"

#: Final outcomes, in table order.
COLUMNS = ("passed", "failed", "error", "skipped", "xfail", "xpass")
FATAL = ("failed", "error")


@dataclass
class TestRecord:
    id: str
    outcome: str  # one of COLUMNS
    raw: str  # the worker's outcome, or "timeout" / "crash" / "not-run"
    short: str = ""
    detail: str = ""
    reason: str = ""  # skip reason or xfail reason
    duration: float = 0.0
    on_loop: bool = False

    def as_json(self, with_detail: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "outcome": self.outcome,
            "raw": self.raw,
            "duration": self.duration,
            "on_loop": self.on_loop,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.short:
            data["short"] = self.short
        if with_detail and self.detail:
            data["detail"] = self.detail
        return data


@dataclass
class SuiteResult:
    name: str
    kind: str
    note: str = ""
    tests: list[TestRecord] = field(default_factory=list)
    duration: float = 0.0
    restarts: int = 0
    problems: list[str] = field(default_factory=list)  # harness-level trouble
    info: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> Counter[str]:
        counter: Counter[str] = Counter(t.outcome for t in self.tests)
        counter["tests"] = len(self.tests)
        counter["on_loop"] = sum(t.on_loop for t in self.tests)
        return counter

    @property
    def ok(self) -> bool:
        return not self.problems and not any(t.outcome in FATAL for t in self.tests)


# ---------------------------------------------------------------------------
# Classification


def classify(test_id: str, raw: str, text: str, loop: str) -> tuple[str, str]:
    """(final outcome, reason) for a raw worker outcome, applying ``xfail.py``.

    Raw outcomes: passed, failure, error, skipped, expected_failure,
    unexpected_success (from the worker), timeout, crash, not-run (from here).
    """
    if raw == "skipped":
        return "skipped", ""
    if raw == "expected_failure":
        return "xfail", "upstream @expectedFailure"
    if raw == "unexpected_success":
        return "xpass", "upstream @expectedFailure"
    entry = xfail.find(test_id, loop)
    if raw == "passed":
        return ("xpass", entry.reason) if entry else ("passed", "")
    plain = "failed" if raw == "failure" else "error"
    if entry is None:
        return plain, ""
    if raw in ("timeout", "crash"):
        if entry.may_hang:
            return "xfail", f"{entry.reason} ({raw})"
        return plain, f"listed in xfail.py ({entry.reason}) but {raw}, not a failure (may_hang?)"
    if raw == "not-run" or entry.matches_failure(text):
        return "xfail", entry.reason
    return plain, (
        f"listed in xfail.py ({entry.reason}) but the failure does not match {entry.match!r}"
    )


# ---------------------------------------------------------------------------
# Running one suite (parent side)


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    for line in raw.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a kill
    return events


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        data = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return data[-limit:]


class _Live:
    """Worker processes alive right now, so Ctrl-C can take them down."""

    lock = threading.Lock()
    procs: set[subprocess.Popen[bytes]] = set()
    stopping = False

    @classmethod
    def kill_all(cls) -> None:
        with cls.lock:
            cls.stopping = True
            procs = list(cls.procs)
        for proc in procs:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class SuiteRunner:
    def __init__(self, suite: _suites.Suite, opts: argparse.Namespace, workdir: Path) -> None:
        self.suite = suite
        self.opts = opts
        self.workdir = workdir / suite.name
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _command(self, attempt: int, exclude: Path | None, collect_only: bool) -> list[str]:
        cmd = [
            sys.executable,
            "-X",
            "faulthandler",
            str(WORKER),
            "--suite",
            self.suite.name,
            "--loop",
            self.opts.loop,
            "--events",
            str(self.workdir / f"events.{attempt}.jsonl"),
            "--faulthandler",
            str(self.workdir / f"faulthandler.{attempt}.txt"),
            "--test-timeout",
            str(self.opts.test_timeout),
            "--xfail-timeout",
            str(self.opts.xfail_timeout),
        ]
        if self.opts.backend:
            cmd += ["--backend", self.opts.backend]
        for keyword in self.opts.keywords:
            cmd += ["-k", keyword]
        if exclude is not None:
            cmd += ["--exclude", str(exclude)]
        if collect_only:
            cmd.append("--collect-only")
        return cmd

    def _spawn(self, cmd: list[str], attempt: int, timeout: float) -> tuple[int | None, bool]:
        log = self.workdir / f"output.{attempt}.txt"
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: killable as a whole
            )
            with _Live.lock:
                _Live.procs.add(proc)
            try:
                return proc.wait(timeout=max(timeout, 1.0)), False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return proc.returncode, True
            finally:
                with _Live.lock:
                    _Live.procs.discard(proc)
                # Reap stragglers (subprocesses the tests left behind).
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def collect(self) -> tuple[list[str], str]:
        rc, _ = self._spawn(self._command(0, None, True), 0, 120.0)
        events = _read_events(self.workdir / "events.0.jsonl")
        for event in events:
            if event.get("event") == "collected":
                return list(event["ids"]), str(event.get("note", ""))
        raise RuntimeError(
            f"collecting {self.suite.name} failed (rc={rc}):\n"
            + _tail(self.workdir / "output.0.txt")
        )

    def run(self) -> SuiteResult:
        result = SuiteResult(self.suite.name, self.suite.kind)
        started = time.monotonic()
        deadline = started + self.opts.suite_timeout
        collected: list[str] = []
        done: dict[str, TestRecord] = {}
        fixture_records: list[TestRecord] = []
        exclude_path: Path | None = None
        attempt = 0
        loop_kind = self.opts.loop
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            rc, killed = self._spawn(
                self._command(attempt, exclude_path, False), attempt, remaining
            )
            events = _read_events(self.workdir / f"events.{attempt}.jsonl")
            in_flight: str | None = None
            in_flight_timeout = self.opts.test_timeout
            finished = False
            for event in events:
                kind = event.get("event")
                if kind == "collected":
                    if not collected:
                        collected = list(event["ids"])
                        result.note = str(event.get("note", ""))
                        result.info = {
                            k: v for k, v in event.items() if k not in ("event", "ids", "note")
                        }
                elif kind == "start":
                    in_flight = event["id"]
                    in_flight_timeout = float(event.get("timeout", self.opts.test_timeout))
                elif kind == "end":
                    in_flight = None
                    text = f"{event.get('short', '')}\n{event.get('detail', '')}"
                    outcome, reason = classify(event["id"], event["outcome"], text, loop_kind)
                    done[event["id"]] = TestRecord(
                        id=event["id"],
                        outcome=outcome,
                        raw=event["outcome"],
                        short=event.get("short", ""),
                        detail=event.get("detail", ""),
                        reason=reason or event.get("reason", ""),
                        duration=float(event.get("duration", 0.0)),
                        on_loop=bool(event.get("on_loop", False)),
                    )
                elif kind == "fixture":
                    text = f"{event.get('short', '')}\n{event.get('detail', '')}"
                    outcome, reason = classify(event["id"], event["outcome"], text, loop_kind)
                    fixture_records.append(
                        TestRecord(
                            id=event["id"],
                            outcome=outcome,
                            raw=event["outcome"],
                            short=event.get("short", ""),
                            detail=event.get("detail", ""),
                            reason=reason or event.get("reason", ""),
                        )
                    )
                elif kind == "done":
                    finished = True
            if finished and rc == 0:
                break
            if _Live.stopping:
                result.problems.append("interrupted")
                break
            if not collected:
                result.problems.append(
                    f"worker died before collecting (rc={rc}):\n"
                    + _tail(self.workdir / f"output.{attempt}.txt")
                )
                break
            if in_flight is None:
                result.problems.append(
                    f"worker exited (rc={rc}) between tests:\n"
                    + _tail(self.workdir / f"output.{attempt}.txt")
                )
                break
            # A test hung (faulthandler exit), crashed the interpreter or ran
            # into the suite deadline: record it, then resume after it.
            stacks = _tail(self.workdir / f"faulthandler.{attempt}.txt")
            raw = "timeout" if killed or "Timeout (" in stacks else "crash"
            why = (
                f"suite timeout ({self.opts.suite_timeout:g}s) hit during this test"
                if killed
                else f"no result after {in_flight_timeout:g}s (per-test timeout)"
                if raw == "timeout"
                else f"worker crashed (rc={rc})"
            )
            text = f"{why}\n{stacks}"
            outcome, reason = classify(in_flight, raw, text, loop_kind)
            done[in_flight] = TestRecord(
                id=in_flight,
                outcome=outcome,
                raw=raw,
                short=why,
                detail=text,
                reason=reason,
                duration=in_flight_timeout if raw == "timeout" else 0.0,
            )
            if killed or time.monotonic() >= deadline:
                result.problems.append(f"suite timeout after {self.opts.suite_timeout:.0f}s")
                break
            if attempt > self.opts.max_restarts:
                result.problems.append(f"gave up after {self.opts.max_restarts} restarts")
                break
            result.restarts += 1
            exclude_path = self.workdir / f"exclude.{attempt}.json"
            exclude_path.write_text(json.dumps(sorted(done)))

        # Tests collected but never reported: their class/module fixture
        # failed or raised SkipTest, or the run was cut short. They take the
        # outcome of the covering fixture; a fixture that covers no unreported
        # test (tearDownClass/tearDownModule errors) is reported on its own.
        used_fixtures: set[int] = set()
        for test_id in collected:
            if test_id in done:
                continue
            index, fixture = next(
                ((i, f) for i, f in enumerate(fixture_records) if _fixture_covers(f.id, test_id)),
                (-1, None),
            )
            if fixture is not None:
                used_fixtures.add(index)
                done[test_id] = TestRecord(
                    test_id,
                    fixture.outcome,
                    "not-run",
                    short=f"{fixture.id}: {fixture.short}",
                    detail=fixture.detail,
                    reason=fixture.reason,
                )
                continue
            text = "not run: the suite ended early"
            outcome, reason = classify(test_id, "not-run", text, loop_kind)
            done[test_id] = TestRecord(test_id, outcome, "not-run", short=text, reason=reason)
        ordered = [done[t] for t in collected if t in done]
        ordered += [f for i, f in enumerate(fixture_records) if i not in used_fixtures]
        result.tests = ordered
        result.duration = time.monotonic() - started
        return result


def _fixture_covers(fixture_id: str, test_id: str) -> bool:
    """Does the ``_ErrorHolder`` description cover this test id?"""
    # "setUpClass (pkg.mod.Class)", "setUpModule (pkg.mod)", "tearDownClass (...)"
    if "(" not in fixture_id:
        return False
    scope = fixture_id[fixture_id.index("(") + 1 : fixture_id.rindex(")")]
    return test_id.startswith(scope + ".")


# ---------------------------------------------------------------------------
# Reporting


def _fmt_table(results: list[SuiteResult], wall: float) -> str:
    headers = ("suite", "tests", "on-loop", *COLUMNS, "time")
    rows: list[tuple[str, ...]] = []
    total: Counter[str] = Counter()
    for res in results:
        counts = res.counts()
        total.update(counts)
        flag = "" if res.ok else " !"
        if res.restarts:
            flag += f" (restarts={res.restarts})"
        rows.append(
            (
                res.name + flag,
                str(counts["tests"]),
                str(counts["on_loop"]),
                *(str(counts[c]) for c in COLUMNS),
                f"{res.duration:.1f}s",
            )
        )
    rows.append(
        (
            "TOTAL",
            str(total["tests"]),
            str(total["on_loop"]),
            *(str(total[c]) for c in COLUMNS),
            f"{wall:.1f}s",
        )
    )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells)

    sep = "  ".join("-" * w for w in widths)
    lines = [fmt(headers), sep, *(fmt(r) for r in rows[:-1]), sep, fmt(rows[-1])]
    return "\n".join(lines)


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def report_text(results: list[SuiteResult], opts: argparse.Namespace, wall: float) -> str:
    out: list[str] = []
    info = next((r.info for r in results if r.info), {})
    header = f"Python {info.get('python', sys.version.split()[0])}, loop={opts.loop}"
    if opts.backend:
        header += f", backend={opts.backend}"
    if "tideloop" in info:
        header += f", tideloop {info.get('tideloop_version')} from {info['tideloop']}"
    out.append(header)
    out.append("")
    out.append(_fmt_table(results, wall))

    if opts.verbose:
        for res in results:
            out.append(f"\n== {res.name}: {res.note}")
            for t in res.tests:
                extra = f"  [{t.reason}]" if t.reason else ""
                out.append(f"  {t.outcome:7} {t.id}{extra}")

    xpasses = [t for r in results for t in r.tests if t.outcome == "xpass"]
    if xpasses:
        out.append(f"\nUnexpected successes ({len(xpasses)}), remove from xfail.py:")
        out += [f"  {t.id}  [{t.reason}]" for t in xpasses]

    problems = [(r.name, p) for r in results for p in r.problems]
    if problems:
        out.append("\nHarness problems:")
        for name, problem in problems:
            out.append(f"  {name}: {problem.splitlines()[0]}")
            if opts.verbose:
                out.append(_indent("\n".join(problem.splitlines()[1:])))

    bad = [t for r in results for t in r.tests if t.outcome in FATAL]
    if bad:
        out.append(f"\nFailures and errors not in xfail.py ({len(bad)}):")
        for t in bad:
            out.append(f"  {t.outcome.upper():6} {t.id}")
            if t.reason:
                out.append(f"      note: {t.reason}")
            if opts.verbose and t.detail:
                out.append(_indent(t.detail))
            elif t.short:
                out.append(f"      {t.short}")
    ok = not bad and not problems
    total: Counter[str] = Counter()
    for res in results:
        total.update(res.counts())
    out.append("")
    out.append(
        f"{total['xfail']} xfailed, {total['xpass']} xpassed, "
        f"{sum(r.restarts for r in results)} worker restarts, {wall:.1f}s wall: "
        + ("OK" if ok else "FAILED")
    )
    # The plain closing line CI log readers look for ("failed" = failed + errors).
    out.append(
        f"conformance: {total['passed']} passed, {total['failed'] + total['error']} failed, "
        f"{total['skipped']} skipped"
    )
    return "\n".join(out)


def report_json(results: list[SuiteResult], opts: argparse.Namespace, wall: float) -> str:
    total: Counter[str] = Counter()
    suites: dict[str, Any] = {}
    for res in results:
        counts = res.counts()
        total.update(counts)
        suites[res.name] = {
            "kind": res.kind,
            "note": res.note,
            "counts": {k: counts[k] for k in ("tests", "on_loop", *COLUMNS)},
            "duration": round(res.duration, 3),
            "restarts": res.restarts,
            "problems": res.problems,
            "tests": [t.as_json(t.outcome in FATAL) for t in res.tests],
        }
    info = next((r.info for r in results if r.info), {})
    ok = all(r.ok for r in results)
    return json.dumps(
        {
            "python": info.get("python", sys.version.split()[0]),
            "loop": opts.loop,
            "backend": opts.backend,
            "tideloop": info.get("tideloop"),
            "duration": round(wall, 3),
            "ok": ok,
            "totals": {k: total[k] for k in ("tests", "on_loop", *COLUMNS)},
            "suites": suites,
        },
        indent=2,
    )


# ---------------------------------------------------------------------------
# CLI


def _select(patterns: list[str]) -> list[_suites.Suite]:
    suites = _suites.all_suites()
    if not patterns:
        return suites
    chosen = [s for s in suites if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(s.name, p) for s in suites)]
    if unknown:
        names = ", ".join(s.name for s in suites)
        print(f"unknown suite(s) {', '.join(unknown)}; known: {names}", file=sys.stderr)
        raise SystemExit(2)
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run CPython's test.test_asyncio against tideloop (or stock asyncio).",
        epilog="See the module docstring of tests/conformance/run.py for the mechanism.",
    )
    parser.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="suite to run (glob allowed, repeatable); default: all",
    )
    parser.add_argument("--list", action="store_true", help="list suites (with --suite: test ids)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="per-test outcomes, tracebacks"
    )
    parser.add_argument(
        "--loop", choices=_loops.LOOP_KINDS, default="tideloop", help="loop under test"
    )
    parser.add_argument(
        "--backend",
        default=None,
        help="only this backend (mixin suites) / as the default loop's backend (module suites)",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write a JSON report to PATH ('-' or no value: stdout, instead of the table)",
    )
    parser.add_argument(
        "-k",
        dest="keywords",
        action="append",
        default=[],
        metavar="SUBSTR",
        help="only tests whose id contains SUBSTR (repeatable)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=os.cpu_count() or 2, help="suites run in parallel"
    )
    parser.add_argument("--test-timeout", type=float, default=60.0, help="seconds per test")
    parser.add_argument(
        "--xfail-timeout",
        type=float,
        default=8.0,
        help="seconds per test listed in xfail.py (they are expected to fail fast)",
    )
    parser.add_argument("--suite-timeout", type=float, default=600.0, help="seconds per suite")
    parser.add_argument("--max-restarts", type=int, default=30, help="per suite, after hangs")
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep worker logs in DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    suites = _select(opts.suite)

    if opts.list and not opts.suite:
        width = max(len(s.name) for s in suites)
        for s in suites:
            print(f"{s.name.ljust(width)}  {s.kind:6}  {s.description}")
        return 0

    if opts.loop == "tideloop":
        try:
            _loops.import_tideloop()
        except ImportError as exc:
            print(f"cannot import tideloop: {exc}", file=sys.stderr)
            return 2

    tmp = tempfile.TemporaryDirectory(prefix="tideloop-conformance-")
    workdir = Path(opts.keep) if opts.keep else Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if opts.list:
            for s in suites:
                ids, note = SuiteRunner(s, opts, workdir).collect()
                print(f"# {s.name}: {len(ids)} tests ({note})")
                for test_id in ids:
                    print(test_id)
            return 0
        return _run(suites, opts, workdir)
    finally:
        if not opts.keep:
            tmp.cleanup()


def _run(suites: list[_suites.Suite], opts: argparse.Namespace, workdir: Path) -> int:
    ordered = sorted(suites, key=lambda s: -_suites.WEIGHTS.get(s.name, 1.0))
    started = time.monotonic()
    lock = threading.Lock()
    results: dict[str, SuiteResult] = {}
    quiet = opts.json == "-"

    def run_one(suite: _suites.Suite) -> None:
        res = SuiteRunner(suite, opts, workdir).run()
        with lock:
            results[suite.name] = res
            if not quiet:
                counts = res.counts()
                status = "ok" if res.ok else "FAIL"
                print(
                    f"[{len(results)}/{len(ordered)}] {suite.name}: {status} "
                    + ", ".join(f"{counts[c]} {c}" for c in COLUMNS if counts[c])
                    + f" ({res.duration:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )

    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        try:
            list(pool.map(run_one, ordered))
        except KeyboardInterrupt:
            _Live.kill_all()
            pool.shutdown(wait=True, cancel_futures=True)
            print("interrupted", file=sys.stderr)
            return 130
    wall = time.monotonic() - started
    final = [results[s.name] for s in suites]

    if opts.json is not None:
        text = report_json(final, opts, wall)
        if opts.json == "-":
            print(text)
        else:
            Path(opts.json).write_text(text + "\n")
    if not quiet:
        print(report_text(final, opts, wall))
    return 0 if all(r.ok for r in final) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `run.py --list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
