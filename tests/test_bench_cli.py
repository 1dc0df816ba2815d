"""The ``python -m tideloop`` command line: ``info`` and ``bench``.

The benchmark run is the short ``--quick`` one (a few seconds); what is
checked is the shape of the report, not the speed of any loop.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

import tideloop
from tideloop.__main__ import main
from tideloop._bench import get_group

from .support.bench import run, run_bench_json


@pytest.mark.timeout(30)
def test_info_text() -> None:
    proc = run("-m", "tideloop", "info", timeout=25)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert tideloop.__version__ in out
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in out
    for word in ("backends", "default backend", "pidfd", "sendfile", "eventfd"):
        assert word in out
    for backend in tideloop.available_backends():
        assert backend in out


@pytest.mark.timeout(30)
def test_info_json() -> None:
    proc = run("-m", "tideloop", "info", "--json", timeout=25)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["tideloop"] == tideloop.__version__
    assert info["backends"] == list(tideloop.available_backends())
    assert info["default_backend"] in info["backends"]
    assert set(info["features"]) == {"pidfd", "sendfile", "eventfd"}
    assert info["features"]["pidfd"] is hasattr(os, "pidfd_open")
    assert all(isinstance(v, bool) for v in info["features"].values())


@pytest.mark.timeout(60)
def test_bench_quick_json() -> None:
    report, progress = run_bench_json("--group", "micro", loops="tideloop,asyncio", timeout=50)
    # A progress line per worker on stderr (not a tty here).
    assert "micro/call_soon" in progress

    assert report["group"] == "micro"
    assert report["quick"] is True
    assert report["loops"] == ["tideloop", "asyncio"]
    expected = [b.name for b in get_group("micro").benchmarks]
    assert len(expected) >= 7
    assert [b["name"] for b in report["benchmarks"]] == expected
    for bench in report["benchmarks"]:
        assert bench["n"] > 0
        assert set(bench["results"]) == {"tideloop", "asyncio"}
        for name, res in bench["results"].items():
            assert res["ok"], (bench["name"], name, res["error"], res.get("traceback"))
            assert res["ops_per_sec"] > 0
            assert res["ops_per_sec_median"] > 0
            assert res["wall_us_per_op"] > 0
            assert res["cpu_us_per_op"] >= 0
            assert res["samples"] and all(
                wall > 0 and cpu >= 0 for rnd in res["samples"] for wall, cpu in rnd
            )
        assert bench["results"]["tideloop"]["loop_type"].startswith("tideloop")
        assert bench["results"]["asyncio"]["loop_type"].startswith("asyncio")
        for key in ("ratios", "ratios_median"):
            ratio = bench[key]["tideloop/asyncio"]
            assert isinstance(ratio, float) and ratio > 0
        # best ops/s ratio is exactly what the ratio field says
        res = bench["results"]
        computed = res["tideloop"]["ops_per_sec"] / res["asyncio"]["ops_per_sec"]
        assert bench["ratios"]["tideloop/asyncio"] == pytest.approx(computed)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("argv", [["--help"], ["info", "--help"], ["bench", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.timeout(30)
def test_bench_list_and_bad_loops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--group", "micro", "--list"]) == 0
    out = capsys.readouterr().out
    for bench in get_group("micro").benchmarks:
        assert bench.name in out
    assert main(["bench", "--loops", "nosuchloop"]) == 2
    assert "unknown loop" in capsys.readouterr().err
    assert main(["bench", "--bench", "nosuchbench"]) == 2
    assert "nosuchbench" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_bench_lists_in_a_child() -> None:
    proc = run("-m", "tideloop", "bench", "--group", "micro", "--list", timeout=25)
    assert proc.returncode == 0, proc.stderr
    assert "sock_echo" in proc.stdout


@pytest.mark.timeout(60)
def test_bench_spawn_quick_json() -> None:
    report, _ = run_bench_json("--group", "spawn", loops="tideloop,asyncio", timeout=50)
    assert report["group"] == "spawn"
    names = [b["name"] for b in report["benchmarks"]]
    assert names == [b.name for b in get_group("spawn").benchmarks]
    assert names == ["spawn_wait", "spawn_communicate"]
    for bench in report["benchmarks"]:
        assert set(bench["results"]) == {"tideloop", "asyncio"}
        for name, res in bench["results"].items():
            assert res["ok"], (bench["name"], name, res["error"], res.get("traceback"))
            assert res["ops_per_sec"] > 0
            assert res["cpu_us_per_op"] > 0


@pytest.mark.timeout(120)
def test_bench_tls_quick_json() -> None:
    report, _ = run_bench_json("--group", "tls", loops="tideloop,asyncio", timeout=110)
    rows = report["median"]
    assert {(r["scenario"], r["loop"]) for r in rows} == {
        (scenario, loop)
        for scenario in ("echo-1k", "echo-100k", "handshake")
        for loop in ("tideloop", "asyncio")
    }
    for row in rows:
        assert row["count"] > 0, row
        assert row["server_us_per_op"] > 0, row
        assert 0 < row["client_cpu_share"] <= 1.5, row
