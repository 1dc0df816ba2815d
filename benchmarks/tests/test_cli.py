"""The suite's command line: ``python -m benchmarks`` (run from the checkout).

The benchmark runs are the short ``--quick`` ones (a few seconds); what is
checked is the shape of the report, not the speed of any loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks
from benchmarks import get_group
from benchmarks._cli import main

from .support import ROOT, run, run_bench_json


def test_suite_is_imported_from_the_checkout() -> None:
    # The suite is not installed: pytest puts the repository's root on
    # sys.path (rootdir, benchmarks/tests a package of benchmarks).
    assert Path(benchmarks.__file__).resolve().parent == ROOT / "benchmarks"


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
def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m benchmarks ")
    for option in ("--group", "--quick", "--json", "--loops", "--list"):
        assert option in out


@pytest.mark.timeout(30)
def test_bench_list_and_bad_loops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--group", "micro", "--list"]) == 0
    out = capsys.readouterr().out
    for bench in get_group("micro").benchmarks:
        assert bench.name in out
    assert main(["--loops", "nosuchloop"]) == 2
    assert "unknown loop" in capsys.readouterr().err
    assert main(["--bench", "nosuchbench"]) == 2
    assert "nosuchbench" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_group_module_lists_in_a_child() -> None:
    proc = run("-m", "benchmarks.micro", "--list", timeout=25)
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
