"""Prometheus metrics of the web app (``GET /metrics``) and the workers (``TURNOUT_METRICS_PORT``).

Labels carry partner ids, channels, statuses, reasons and provider error codes only: never a
person, phone number or email. Partner ids leave the process only when the operator asked for
them (``TURNOUT_METRICS_PARTNER_LABELS``): ``exposition`` otherwise sums the ``partner`` label
away, so who posts how much, and since when, is not read off a scrape.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

@functools.lru_cache(maxsize=None)
def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once: ``labels()`` takes a lock and hashes each
    time, and the hot paths (a text handed over, an ask's state written) call it per record."""
    return metric.labels(*labels)


EVENTS_ACCEPTED = Counter("turnout_events_accepted", "Partner events accepted by the ingress (acknowledged by the broker)", ["partner"])
EVENTS_REJECTED = Counter(
    "turnout_events_rejected",
    "Partner requests or events the ingress refused, by reason: unknown_partner, signature, too_large, bad_body, invalid_event, duplicate, broker_unavailable",
    ["reason"],
)
TALLY_RECORDS = Counter("turnout_tally_records", "Fact records applied to this web app's tallies")
TALLY_LAG = Gauge("turnout_tally_lag", "Fact records on the broker not yet applied to this web app's tallies")

# The workers.
ASKS = Counter("turnout_asks", "Ask state changes written by this worker, by channel and new status "
               "(sending, sent, delivered, failed, in_doubt, deferred, cancelled)", ["channel", "status"])
PROVIDER_SECONDS = Histogram("turnout_provider_request_seconds", "Time for one provider request (one text, or one email batch), answered or not",
                             ["provider"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PROVIDER_ERRORS = Counter("turnout_provider_errors", "Provider refusals (of a request, retried or not) and failures (of a message, by "
                          "status callback or event), by provider and error code (Twilio's, the HTTP status, SendGrid's event such as "
                          "'bounce'; 'no_answer' for timeouts and connection errors)", ["provider", "code"])
CONSUMER_LAG = Gauge("turnout_consumer_lag", "Records on the broker not yet consumed by this worker, per topic (high watermark - position)", ["topic"])


#: The families only a worker writes, and only the web app: each process's scrape leaves out the
#: other's (they would read as zero, or as nothing happening).
WORKER_ONLY = frozenset(m.describe()[0].name for m in (ASKS, PROVIDER_SECONDS, PROVIDER_ERRORS, CONSUMER_LAG))
WEB_ONLY = frozenset(m.describe()[0].name for m in (EVENTS_ACCEPTED, EVENTS_REJECTED, TALLY_RECORDS, TALLY_LAG))


def exposition(partner_labels: bool) -> bytes:
    """The text a scrape of the web app gets."""
    return generate_latest(Scrape(REGISTRY, leave_out=WORKER_ONLY, partner_labels=partner_labels))


def worker_scrape() -> "Scrape":
    """What a worker's ``/metrics`` serves (``TURNOUT_METRICS_PORT``): its own families (none is by partner)."""
    return Scrape(REGISTRY, leave_out=WEB_ONLY, partner_labels=True)


class Scrape:
    """A registry's metrics without the families in ``leave_out`` and, unless ``partner_labels``,
    with the ``partner`` label summed away (``_created`` samples: the earliest), so no partner id
    appears and every total is unchanged."""

    def __init__(self, registry: Collector, *, leave_out: frozenset[str], partner_labels: bool = False) -> None:
        self._registry, self._leave_out, self._partner_labels = registry, leave_out, partner_labels

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if family.name in self._leave_out:
                continue
            if self._partner_labels or not any("partner" in sample.labels for sample in family.samples):
                yield family
                continue
            merged: dict[tuple[str, tuple[tuple[str, str], ...]], object] = {}
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k != "partner"}
                key = (sample.name, tuple(sorted(labels.items())))
                old = merged.get(key)
                if old is None:
                    value = sample.value
                elif sample.name.endswith("_created"):
                    value = min(old.value, sample.value)
                else:
                    value = old.value + sample.value
                merged[key] = sample._replace(labels=labels, value=value, exemplar=None)
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = list(merged.values())
            yield out
