"""Helpers for the benchmark suite's tests (benchmarks/tests/test_*.py): running
``python -m benchmarks`` on this checkout, the servers under test driven
over their control pipe, and the checks that the ``streams`` and ``udp``
reports share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from benchmarks._core import loop_env, parse_loop_spec

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"


def env() -> dict[str, str]:
    """The environment of a child process: this checkout's tideloop first,
    then the checkout's root (its ``benchmarks`` package)."""
    out = dict(os.environ)
    head = f"{SRC}{os.pathsep}{ROOT}"
    old = out.get("PYTHONPATH")
    out["PYTHONPATH"] = head if not old else f"{head}{os.pathsep}{old}"
    return out


def server_env(cmd: list[str]) -> dict[str, str]:
    """``env()`` for a server started with ``--loop ROW``: the row's own
    TIDELOOP_PURE_PYTHON setting (set for a pure row, removed for the others),
    as the benchmark's runner gives it, whatever the test run's own is."""
    if "--loop" not in cmd:
        return env()
    return loop_env(parse_loop_spec(cmd[cmd.index("--loop") + 1]), env())


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the repository's root, its output captured."""
    return subprocess.run(
        [sys.executable, *args],
        env=env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_bench_json(*args: str, loops: str, timeout: float) -> tuple[dict[str, Any], str]:
    """``python -m benchmarks ARGS --quick --json --loops LOOPS``, which must
    succeed: the report and the progress lines (stderr)."""
    proc = run("-m", "benchmarks", *args, "--quick", "--json", "--loops", loops, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report, proc.stderr


def run_table(group: str, *args: str, words: tuple[str, ...], timeout: float) -> str:
    """``python -m benchmarks.GROUP ARGS`` (the group's own entry point), which
    must succeed with no failure: its table, which must hold each of ``words``."""
    proc = run("-m", f"benchmarks.{group}", *args, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for word in words:
        assert word in out
    assert "FAILED" not in out
    return out


def available_clients(resolve: Callable[[str], object]) -> list[str]:
    """The load generators to test: ``python``, and ``c`` first when
    ``resolve("c")`` can build it."""
    kinds = ["python"]
    try:
        resolve("c")
    except RuntimeError:
        pass
    else:
        kinds.insert(0, "c")
    return kinds


# -- reports ---------------------------------------------------------------------------


def check_server_report(
    report: dict[str, Any], group: str, loops: list[str], names: list[str]
) -> None:
    """What every quick, one-round ``streams`` or ``udp`` JSON report must hold."""
    assert report["group"] == group
    assert report["quick"] is True
    assert report["loops"] == loops
    assert report["rounds"] == 1
    assert report["client"]["kind"] in ("c", "python")
    assert [b["name"] for b in report["benchmarks"]] == names
    if sys.platform.startswith("linux"):
        noise = report["noise"]
        assert noise["runs"] == len(names) * len(loops)
        assert 0 <= noise["median"] <= noise["max"]
    for bench in report["benchmarks"]:
        assert set(bench["results"]) == set(loops)
        for name, res in bench["results"].items():
            assert res["ok"], (bench["name"], name, res["error"], res.get("detail"))
            assert res["msgs_per_sec"] > 0
            assert res["server_cpu_us_per_msg"] > 0
            assert 0 <= res["server_user_us_per_msg"] <= res["server_cpu_us_per_msg"]
            assert res["client_cpu_us_per_msg"] > 0
            assert res["client_bound"] is (res["client_share"] >= 1.0)
            (rnd,) = res["rounds"]
            assert rnd["msgs"] == res["messages"]
            assert rnd["wall_s"] > 0 and rnd["server_wall_s"] > 0
            assert rnd["server_user_s"] >= 0 and rnd["server_sys_s"] >= 0
            assert res["server_cpu_us_per_msg"] == pytest.approx(
                (rnd["server_user_s"] + rnd["server_sys_s"])
                / (rnd["msgs_per_sec"] * rnd["server_wall_s"])
                * 1e6
            )
        for key in ("ratios", "ratios_median", "cpu_ratios", "user_cpu_ratios"):
            assert isinstance(bench[key], dict)


def check_one_loop(report: dict[str, Any], loop: str) -> None:
    """A report of ``loop`` alone: its loop type, and no ratio."""
    for bench in report["benchmarks"]:
        assert bench["results"][loop]["loop_type"].startswith(loop)
        assert bench["ratios"] == {}  # one loop: nothing to compare with


def check_tideloop_vs_asyncio(report: dict[str, Any]) -> None:
    """The loop types, and the ratios are what the figures say."""
    for bench in report["benchmarks"]:
        res = bench["results"]
        assert res["tideloop"]["loop_type"].startswith("tideloop")
        assert res["asyncio"]["loop_type"].startswith("asyncio")
        assert bench["ratios"]["tideloop/asyncio"] == pytest.approx(
            res["tideloop"]["msgs_per_sec"] / res["asyncio"]["msgs_per_sec"]
        )
        assert bench["cpu_ratios"]["tideloop/asyncio"] == pytest.approx(
            res["asyncio"]["server_cpu_us_per_msg"] / res["tideloop"]["server_cpu_us_per_msg"]
        )


# -- the servers under test ------------------------------------------------------------


class ControlledServer:
    """A benchmark's server process (``cmd``) driven over its control pipe."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd,
            env=server_env(cmd),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hello = self.event()
        assert hello["event"] == "listening", hello
        self.hello = hello
        self.port = int(hello["port"])

    def event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read().decode() if self.proc.stderr else "no output"
        obj: dict[str, Any] = json.loads(line)
        return obj

    def command(self, text: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self) -> tuple[int, str]:
        """Close the control pipe (the server stops), wait for the exit."""
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.stdout.read()
        err = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.wait(timeout=20), err

    def sample_and_quit(self) -> dict[str, Any]:
        """A CPU sample (checked), then ``q``: the server's ``closed`` event."""
        self.command(b"r\n")
        sample = self.event()
        assert sample["event"] == "sample"
        assert sample["utime"] >= 0 and sample["stime"] >= 0 and sample["t"] > 0
        self.command(b"q\n")
        return self.event()

    def check_exit(self) -> None:
        status, err = self.close()
        assert status == 0, err


@contextmanager
def server_pool() -> Iterator[Callable[[list[str]], ControlledServer]]:
    """``start(cmd)``: a server, killed (if need be) and closed on exit."""
    servers: list[ControlledServer] = []

    def start(cmd: list[str]) -> ControlledServer:
        server = ControlledServer(cmd)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.kill()
            if server.proc.stdout is not None and not server.proc.stdout.closed:
                server.close()
