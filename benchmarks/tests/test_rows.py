"""The rows of a report: ``tideloop`` and ``tideloop-pure`` (the same installation
run with ``TIDELOOP_PURE_PYTHON=1``), and the build each of them ran.

Checked: the loop names are parsed and defaulted, every runner starts a
``-pure`` row's processes with the variable and every other row's without it
(whatever the parent's environment holds), a process refuses a row its
environment contradicts, and the reports say which build each tideloop row
ran.  No compiled build exists in a checkout, so both rows run pure Python
here; the build detection is checked with stand-in modules.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

from benchmarks import _runner, _server_bench, spawn, tls
from benchmarks._build import PURE_LABEL, build_label, builds_line, tideloop_build
from benchmarks._cli import resolve_loops
from benchmarks._core import (
    PURE_ENV,
    LoopSpec,
    check_build_env,
    close_loop,
    loop_env,
    make_loop,
    parse_loop_spec,
)
from benchmarks._runner import merge_build, pair_ratios
from benchmarks._streams_run import Plan, RunSample

from .support import env, run

# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec", "label"),
    [
        ("tideloop", LoopSpec("tideloop"), "tideloop"),
        ("tideloop-pure", LoopSpec("tideloop", pure=True), "tideloop-pure"),
        ("tideloop-epoll", LoopSpec("tideloop", "epoll"), "tideloop-epoll"),
        ("tideloop:epoll", LoopSpec("tideloop", "epoll"), "tideloop-epoll"),
        ("tideloop-pure-epoll", LoopSpec("tideloop", "epoll", pure=True), "tideloop-pure-epoll"),
        ("tideloop-pure:select", LoopSpec("tideloop", "select", pure=True), "tideloop-pure-select"),
        ("tideloop:pure-poll", LoopSpec("tideloop", "poll", pure=True), "tideloop-pure-poll"),
        (" asyncio ", LoopSpec("asyncio"), "asyncio"),
        ("pyfloor", LoopSpec("pyfloor"), "pyfloor"),
    ],
)
def test_parse_loop_spec(text: str, spec: LoopSpec, label: str) -> None:
    parsed = parse_loop_spec(text)
    assert parsed == spec
    assert parsed.label == label
    assert parse_loop_spec(label) == spec  # labels parse back


def test_parse_loop_spec_errors() -> None:
    with pytest.raises(ValueError, match="missing backend name in 'tideloop-pure-'"):
        parse_loop_spec("tideloop-pure-")
    with pytest.raises(ValueError, match="tideloop-pure, tideloop-pure-BACKEND"):
        parse_loop_spec("tideloop_pure")


def test_compiled_row_of_a_pure_row() -> None:
    assert LoopSpec("tideloop", pure=True).compiled_row == LoopSpec("tideloop")
    assert LoopSpec("tideloop", "poll", pure=True).compiled_row == LoopSpec("tideloop", "poll")
    assert LoopSpec("tideloop").compiled_row is None
    assert LoopSpec("asyncio").compiled_row is None


def test_default_loops_have_both_builds() -> None:
    labels = [spec.label for spec in resolve_loops(None)]
    assert labels[:3] == ["tideloop", "tideloop-pure", "asyncio"]
    # An explicit list is taken as given.
    assert [s.label for s in resolve_loops("tideloop,asyncio")] == ["tideloop", "asyncio"]
    assert [s.label for s in resolve_loops("tideloop-pure-poll")] == ["tideloop-pure-poll"]
    with pytest.raises(ValueError, match="'nosuch' is not available"):
        resolve_loops("tideloop-pure-nosuch")
    assert spawn.available_loops()[:3] == ["tideloop", "tideloop-pure", "asyncio"]
    assert tls.default_loops()[:3] == ["tideloop", "tideloop-pure", "asyncio"]


# -- environments ----------------------------------------------------------------------------


def test_loop_env() -> None:
    base = {"PATH": "/bin", PURE_ENV: "1"}
    assert loop_env(LoopSpec("tideloop", pure=True), {"PATH": "/bin"}) == {
        "PATH": "/bin",
        PURE_ENV: "1",
    }
    assert loop_env(LoopSpec("tideloop", "poll", pure=True), {PURE_ENV: "0"})[PURE_ENV] == "1"
    for spec in (LoopSpec("tideloop"), LoopSpec("asyncio"), LoopSpec("pyfloor")):
        assert loop_env(spec, base) == {"PATH": "/bin"}
    assert base == {"PATH": "/bin", PURE_ENV: "1"}  # not modified


@pytest.mark.parametrize("value", ["1", "yes", "0", ""])
def test_a_row_refuses_a_contrary_environment(value: str) -> None:
    environ = {PURE_ENV: value}
    set_ = value not in ("", "0")
    for spec, ok in ((LoopSpec("tideloop"), not set_), (LoopSpec("tideloop", pure=True), set_)):
        if ok:
            check_build_env(spec, environ)
        else:
            with pytest.raises(ValueError, match=PURE_ENV):
                check_build_env(spec, environ)
    check_build_env(LoopSpec("asyncio"), environ)  # not tideloop: not its business


def test_make_loop_checks_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "1")
    with pytest.raises(ValueError, match="unset it, or ask for tideloop-pure-poll"):
        make_loop(LoopSpec("tideloop", "poll"))
    if tideloop_build()["build"] == "pure":
        loop = make_loop(LoopSpec("tideloop", pure=True))
        close_loop(loop)
    else:  # this process runs the compiled build: the pure row refuses it
        with pytest.raises(RuntimeError, match="yet tideloop imported compiled modules"):
            make_loop(LoopSpec("tideloop", pure=True))
    monkeypatch.delenv(PURE_ENV)
    with pytest.raises(ValueError, match="started with TIDELOOP_PURE_PYTHON=1"):
        make_loop(LoopSpec("tideloop", pure=True))


_ROWS = [LoopSpec("tideloop"), LoopSpec("tideloop", pure=True), LoopSpec("asyncio")]


def _expect_envs(envs: Mapping[str, Mapping[str, str]]) -> None:
    assert envs["tideloop-pure"][PURE_ENV] == "1"
    assert PURE_ENV not in envs["tideloop"]
    assert PURE_ENV not in envs["asyncio"]


def test_worker_runner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "1")  # the user's shell exports it
    envs: dict[str, dict[str, str]] = {}

    def fake(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
        envs[spec["loop"]] = env
        return {"ok": True, "samples": [[1.0, 1.0]], "loop_type": "x", "build": None}

    monkeypatch.setattr(_runner, "_run_worker", fake)
    group = spawn.GROUP
    _runner.run_group(group, _ROWS, quick=True, only=["spawn_wait"])
    _expect_envs(envs)


def test_server_runner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "yes")
    envs: dict[str, dict[str, str]] = {}

    class Case:
        name = "case"
        description = "case"

    def fake(case: Any, spec: LoopSpec, env: dict[str, str]) -> tuple[RunSample, str]:
        envs[spec.label] = env
        return RunSample(1, 1.0, 1, 1, 1, 0.1, 0.1, 1.0, 0.1, 0.1, build="b"), "x"

    plan = Plan.make(quick=True)
    results, _ = _server_bench.run_rounds("g", [Case()], _ROWS, plan, fake, name_width=4, rate="")
    _expect_envs(envs)
    assert results["case"]["tideloop"].build == "b"


def test_tls_children_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "1")
    _expect_envs({spec.label: tls._child_env(spec) for spec in _ROWS})


def test_spawn_standalone_worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "1")
    envs: dict[str, dict[str, str]] = {}

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        envs[cmd[4]] = kwargs["env"]
        out = b'{"wall": 1.0, "cpu": 1.0, "n": 1, "build": null}\n'
        return subprocess.CompletedProcess(cmd, 0, out, b"")

    monkeypatch.setattr(spawn.subprocess, "run", fake_run)
    for spec in _ROWS:
        spawn._run_worker(spec.label, "spawn_wait", 1, 1)
    _expect_envs(envs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("group", "bench"),
    [("micro", "call_soon"), ("streams", "protocol-1k-10c"), ("tls", "echo-1k")],
)
def test_rows_run_with_the_variable_in_the_shell(group: str, bench: str) -> None:
    # Each process refuses a row its environment contradicts (make_loop), so
    # both rows working with the variable exported proves the runners set it
    # for the pure row alone.
    child_env = env()
    child_env[PURE_ENV] = "1"
    cmd = [sys.executable, "-m", "benchmarks", "--group", group, "--bench", bench, "--quick"]
    cmd += ["--loops", "tideloop,tideloop-pure", "-q"]
    proc = subprocess.run(
        cmd, env=child_env, capture_output=True, text=True, timeout=110, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = builds_line({"tideloop": PURE_LABEL, "tideloop-pure": PURE_LABEL})
    assert expected is not None and expected in proc.stdout
    assert "FAILED" not in proc.stdout


# -- builds -----------------------------------------------------------------------------------


def test_build_of_this_process() -> None:
    info = tideloop_build()
    # scripts/test names the build each run must be; a dev checkout's
    # editable install is pure.
    expected = os.environ.get("TIDELOOP_EXPECT_BUILD") or info["build"]
    assert info["build"] == expected
    if expected == "pure":
        assert info["compiled"] == []
        assert info["label"] == PURE_LABEL == build_label(info)
    else:
        assert "tideloop._core" in info["compiled"]
        assert info["label"].startswith("compiled (mypyc, ")
    assert os.path.isfile(os.path.join(info["path"], "__init__.py"))


def _without_compiled_tideloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide this process's compiled tideloop modules (the compiled run's)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for name, module in list(sys.modules.items()):
        if name.startswith("tideloop.") and str(getattr(module, "__file__", "")).endswith(
            suffixes
        ):
            monkeypatch.delitem(sys.modules, name)


def test_build_label_of_compiled_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_compiled_tideloop(monkeypatch)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    fake = types.ModuleType("tideloop._fake_compiled")
    fake.__file__ = f"/x/tideloop/_fake_compiled{suffix}"
    monkeypatch.setitem(sys.modules, "tideloop._fake_compiled", fake)
    info = tideloop_build()
    assert info["build"] == "compiled"
    assert info["compiled"] == ["tideloop._fake_compiled"]
    assert info["label"] == "compiled (1 module)"
    # mypyc's shared library of a multi-module build names the compiler.
    monkeypatch.setitem(sys.modules, "0123abcd__mypyc", types.ModuleType("0123abcd__mypyc"))
    assert tideloop_build()["label"] == "compiled (mypyc, 1 module)"
    assert (
        build_label({"compiled": ["a", "b"], "compiler": "mypyc"}) == "compiled (mypyc, 2 modules)"
    )
    assert build_label(None) == "unknown"


def test_builds_line() -> None:
    compiled = "compiled (mypyc, 6 modules)"
    line = builds_line({"tideloop": compiled, "tideloop-pure": PURE_LABEL})
    assert line == f"builds: tideloop: {compiled}; tideloop-pure: {PURE_LABEL}"
    line = builds_line({"tideloop-epoll": PURE_LABEL, "tideloop-pure-epoll": None})
    assert line == (
        f"builds: tideloop-epoll: {PURE_LABEL} (no compiled modules installed); "
        "tideloop-pure-epoll: unknown"
    )
    assert builds_line({}) is None


def test_merge_build() -> None:
    assert merge_build(None, None) is None
    assert merge_build(None, "pure Python") == "pure Python"
    assert merge_build("pure Python", None) == "pure Python"
    assert merge_build("pure Python", "pure Python") == "pure Python"
    mixed = merge_build("pure Python", "compiled (mypyc, 6 modules)")
    assert mixed == "pure Python / compiled (mypyc, 6 modules)"
    assert merge_build(mixed, "pure Python") == mixed


def test_ratios_for_both_tideloop_rows() -> None:
    class Row:
        def __init__(self, loop: str, value: float) -> None:
            self.loop = loop
            self.ok = True
            self.value = value

    rows = [Row(n, v) for n, v in (("tideloop", 4.0), ("tideloop-pure", 2.0), ("asyncio", 1.0))]
    rows.append(Row("uvloop", 8.0))
    ratios = pair_ratios(rows, "x", {"x": lambda s, o: s.value / o.value})
    assert ratios == {
        "tideloop/tideloop-pure": 2.0,
        "tideloop/asyncio": 4.0,
        "tideloop/uvloop": 0.5,
        "tideloop-pure/asyncio": 2.0,
        "tideloop-pure/uvloop": 0.25,
    }


@pytest.mark.timeout(60)
def test_report_says_which_build_each_row_ran() -> None:
    proc = run(
        "-m", "benchmarks", "--group", "micro", "--bench", "sleep0", "--quick", "--json",
        "--loops", "tideloop,tideloop-pure,asyncio", timeout=50,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["builds"] == {"tideloop": PURE_LABEL, "tideloop-pure": PURE_LABEL}
    (bench,) = report["benchmarks"]
    assert bench["results"]["tideloop"]["build"] == PURE_LABEL
    assert bench["results"]["tideloop-pure"]["build"] == PURE_LABEL
    assert bench["results"]["asyncio"]["build"] is None
    assert set(bench["ratios"]) == {
        "tideloop/tideloop-pure",
        "tideloop/asyncio",
        "tideloop-pure/asyncio",
    }
