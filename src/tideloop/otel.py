"""OpenTelemetry bridge: a loop's stats and health metrics as observable instruments.

    import tideloop, tideloop.otel
    loop = tideloop.new_event_loop(metrics=True)
    tideloop.otel.instrument(loop)        # the global MeterProvider, or pass one

Needs ``opentelemetry-api`` (``pip install tideloop[otel]``); an SDK or an
exporter is the application's choice. Instruments are observable: nothing
runs on the loop, the SDK reads ``loop.stats()`` and ``loop.metrics()`` when
it collects. The loop is held weakly (a collected loop reports nothing).

Always (from ``loop.stats()``): ``tideloop.loop.callbacks``, ``.polls``,
``.io_events`` (counters), ``.ready`` and ``.timers.pending`` (gauges).
With metrics on (``new_event_loop(metrics=True)``): ``.iterations``,
``.busy_time`` and ``.idle_time`` (counters, s), ``.utilisation`` (gauge, 0-1),
``.slow_callbacks`` (counter), and the timer lag histogram as
``.lag.count``, ``.lag.sum`` (counters), ``.lag.max`` (gauge) and
``.lag.buckets`` (a counter per bucket, attribute ``le``: the bucket's upper
bound in seconds, ``+Inf`` for the last; counts are per bucket, not cumulative).
The API has no observable histogram, hence the parts. Every observation
carries ``tideloop.backend`` and any ``attributes`` given.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics as otel_metrics  # type: ignore[import-not-found,unused-ignore]
from opentelemetry.metrics import (  # type: ignore[import-not-found,unused-ignore]
    CallbackOptions,
    Observation,
)

from . import __version__
from ._loop import EventLoop

__all__ = ["instrument"]

_PREFIX = "tideloop.loop."


def instrument(
    loop: EventLoop,
    meter_provider: Any = None,
    *,
    attributes: Mapping[str, str] | None = None,
) -> list[Any]:
    """Register observable instruments for ``loop``; returns them.

    ``meter_provider``: an OpenTelemetry ``MeterProvider`` (default: the
    global one). ``attributes`` are added to every observation (for example
    a name telling several loops apart).
    """
    provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
    meter = provider.get_meter("tideloop", __version__)
    ref = weakref.ref(loop)
    base = dict(attributes or {})
    base["tideloop.backend"] = loop.stats()["backend"]
    try:
        loop.metrics()
    except RuntimeError:  # metrics are off for this loop
        metered = False
    else:
        metered = True

    def from_stats(key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            lp = ref()
            if lp is None:
                return []
            return [Observation(lp.stats()[key], base)]

        return observe

    def from_metrics(
        read: Callable[[Any], float | int],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            lp = ref()
            if lp is None:
                return []
            return [Observation(read(lp.metrics()), base)]

        return observe

    def lag_buckets(_options: CallbackOptions) -> Iterable[Observation]:
        lp = ref()
        if lp is None:
            return []
        lag = lp.metrics().lag
        bounds = [repr(b) for b in lag.bounds] + ["+Inf"]
        return [
            Observation(n, {**base, "le": le}) for le, n in zip(bounds, lag.counts, strict=True)
        ]

    p = _PREFIX
    instruments = [
        meter.create_observable_counter(
            p + "callbacks", [from_stats("callbacks_run")], "{callback}", "Callbacks run"
        ),
        meter.create_observable_counter(
            p + "polls", [from_stats("polls")], "{poll}", "Polls of the I/O backend"
        ),
        meter.create_observable_counter(
            p + "io_events", [from_stats("events")], "{event}", "I/O readiness events"
        ),
        meter.create_observable_gauge(
            p + "ready", [from_stats("ready")], "{callback}", "Callbacks ready to run"
        ),
        meter.create_observable_gauge(
            p + "timers.pending", [from_stats("timers_pending")], "{timer}", "Timers scheduled"
        ),
    ]
    if metered:
        instruments += [
            meter.create_observable_counter(
                p + "iterations",
                [from_metrics(lambda m: m.iterations)],
                "{iteration}",
                "Iterations of the run loop",
            ),
            meter.create_observable_counter(
                p + "busy_time",
                [from_metrics(lambda m: m.busy_seconds)],
                "s",
                "Time spent running callbacks",
            ),
            meter.create_observable_counter(
                p + "idle_time",
                [from_metrics(lambda m: m.idle_seconds)],
                "s",
                "Time spent waiting for I/O or timers",
            ),
            meter.create_observable_gauge(
                p + "utilisation",
                [from_metrics(lambda m: m.utilisation)],
                "1",
                "Busy time over busy plus idle time",
            ),
            meter.create_observable_counter(
                p + "slow_callbacks",
                [from_metrics(lambda m: m.slow_callbacks)],
                "{callback}",
                "Callbacks that ran at least slow_callback_duration",
            ),
            meter.create_observable_counter(
                p + "lag.count",
                [from_metrics(lambda m: m.lag.count)],
                "{timer}",
                "Timer callbacks whose lag was measured",
            ),
            meter.create_observable_counter(
                p + "lag.sum",
                [from_metrics(lambda m: m.lag.sum)],
                "s",
                "Sum of timer callbacks' lag",
            ),
            meter.create_observable_gauge(
                p + "lag.max",
                [from_metrics(lambda m: m.lag.max)],
                "s",
                "Largest timer callback lag",
            ),
            meter.create_observable_counter(
                p + "lag.buckets",
                [lag_buckets],
                "{timer}",
                "Timer callbacks per lag bucket (attribute le: upper bound in s)",
            ),
        ]
    return instruments
