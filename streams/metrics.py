"""Prometheus metrics of the web app (``GET /metrics``) and the workers (``TURNOUT_METRICS_PORT``).

Labels carry partner ids, channels, statuses, reasons and provider error codes only: never a
person, phone number or email.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_ACCEPTED = Counter("turnout_events_accepted", "Partner events accepted by the ingress (acknowledged by the broker)", ["partner"])
EVENTS_REJECTED = Counter(
    "turnout_events_rejected",
    "Partner requests or events the ingress refused, by reason: unknown_partner, signature, too_large, bad_body, invalid_event, duplicate, broker_unavailable",
    ["reason"],
)
TALLY_RECORDS = Counter("turnout_tally_records", "Fact records applied to this web app's tallies")
TALLY_LAG = Gauge("turnout_tally_lag", "Fact records on the broker not yet applied to this web app's tallies")
