"""``/metrics``: Prometheus figures read from the state at each scrape.

Applies and saved plans run in other processes (the CLI, CI jobs), which record their
durations, step outcomes and retries in the audit log; the collector turns those
records into metrics, so the figures survive restarts and cover every runner that
shares the state backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from stackwright.workflow import dashboard

BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
LABELS = ["project", "stack", "environment"]


class StateCollector(Collector):
    def __init__(self, site: dashboard.Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Metric]:
        figures = dashboard.metrics(self.site)
        applies = HistogramMetricFamily("stackwright_apply_duration_seconds",
                                        "Duration of applies (up, apply, destroy, rollback), from the audit log",
                                        labels=LABELS)
        previews = HistogramMetricFamily("stackwright_preview_duration_seconds",
                                         "Duration of the preview of each saved plan (`plan --out`)", labels=LABELS)
        steps = CounterMetricFamily("stackwright_steps", "Applied steps by outcome", labels=[*LABELS, "outcome"])
        retries = CounterMetricFamily("stackwright_retries", "Provider calls retried during applies", labels=LABELS)
        drifted = GaugeMetricFamily("stackwright_drifted_resources",
                                    "Resources the last recorded refresh found changed or deleted", labels=LABELS)
        waiting = GaugeMetricFamily("stackwright_plans_waiting", "Saved plans waiting for approvals", labels=LABELS)
        for f in figures:
            labels = [f.project, f.stack, f.environment]
            applies.add_metric(labels, *_histogram(f.apply_seconds))
            previews.add_metric(labels, *_histogram(f.preview_seconds))
            for outcome, count in sorted(f.steps.items()):
                steps.add_metric([*labels, outcome], count)
            retries.add_metric(labels, f.retries)
            drifted.add_metric(labels, f.drifted)
            waiting.add_metric(labels, f.waiting)
        yield from (applies, previews, steps, retries, drifted, waiting)


def _histogram(values: Sequence[float]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts and the sum, as HistogramMetricFamily takes them."""
    buckets = [(str(bound), float(sum(1 for v in values if v <= bound))) for bound in BUCKETS]
    buckets.append(("+Inf", float(len(values))))
    return buckets, float(sum(values))


