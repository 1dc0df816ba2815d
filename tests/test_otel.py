"""tideloop.otel: the loop's stats and metrics read by OpenTelemetry's SDK
(InMemoryMetricReader). tideloop-only: asyncio has no such counters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import tideloop
import tideloop.otel


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "tideloop"
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


@pytest.mark.parametrize("backend", tideloop.available_backends())
def test_metered_loop_reports_everything(
    reader: tuple[InMemoryMetricReader, MeterProvider], backend: str
) -> None:
    clock = tideloop.VirtualClock(autojump_threshold=float("inf"))
    loop = tideloop.new_event_loop(backend=backend, metrics=True, clock=clock)
    try:
        instruments = tideloop.otel.instrument(loop, reader[1], attributes={"app": "demo"})
        assert len(instruments) == 14
        done = loop.create_future()
        loop.call_later(1.0, lambda: None)
        loop.call_later(3.0, done.set_result, None)
        loop.call_soon(clock.advance, 3.5)  # lags: 2.5 s and 0.5 s
        loop.run_until_complete(done)
        points = _points(reader[0])
        m = loop.metrics()
    finally:
        loop.close()
    prefix = "tideloop.loop."
    assert set(points) == {
        prefix + name
        for name in (
            "callbacks polls io_events ready timers.pending iterations busy_time idle_time "
            "utilisation slow_callbacks lag.count lag.sum lag.max lag.buckets"
        ).split()
    }
    for name, pts in points.items():
        for pt in pts:
            assert pt.attributes["app"] == "demo", name
            assert pt.attributes["tideloop.backend"] == backend, name
    value = {name: pts[0].value for name, pts in points.items() if name != prefix + "lag.buckets"}
    assert value[prefix + "lag.count"] == 2
    assert value[prefix + "lag.sum"] == 3.0
    assert value[prefix + "lag.max"] == 2.5
    assert value[prefix + "iterations"] == m.iterations
    assert value[prefix + "callbacks"] >= 3
    assert value[prefix + "slow_callbacks"] == 0
    assert 0.0 <= value[prefix + "utilisation"] <= 1.0
    buckets = {pt.attributes["le"]: pt.value for pt in points[prefix + "lag.buckets"]}
    assert len(buckets) == len(m.lag.bounds) + 1
    assert buckets["0.5"] == 1 and buckets["5.0"] == 1 and buckets["+Inf"] == 0
    assert sum(buckets.values()) == 2


def test_unmetered_loop_reports_its_stats(
    reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    loop = tideloop.new_event_loop(metrics=False)
    try:
        tideloop.otel.instrument(loop, reader[1])
        loop.run_until_complete(asyncio.sleep(0))
        points = _points(reader[0])
        stats = loop.stats()
    finally:
        loop.close()
    assert sorted(points) == sorted(
        "tideloop.loop." + n for n in ("callbacks", "polls", "io_events", "ready", "timers.pending")
    )
    assert points["tideloop.loop.callbacks"][0].value == stats["callbacks_run"]


def test_a_collected_loop_reports_nothing(
    reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    loop = tideloop.new_event_loop(metrics=True)
    tideloop.otel.instrument(loop, reader[1])
    loop.close()
    del loop
    import gc

    gc.collect()
    data = reader[0].get_metrics_data()
    assert data is None or not any(
        m.data.data_points
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )
