"""Prometheus metrics of the web app (``GET /metrics``) and the workers (``TURNOUT_METRICS_PORT``).

Labels carry partner ids, channels, statuses, reasons and provider error codes only: never a
person, phone number or email.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
PROVIDER_ERRORS = Counter("turnout_provider_errors", "Provider refusals and failures, retried or not, by provider and error code "
                          "(Twilio's or the HTTP status; 'no_answer' for timeouts and connection errors)", ["provider", "code"])
CONSUMER_LAG = Gauge("turnout_consumer_lag", "Records on the broker not yet consumed by this worker, per topic (high watermark - position)", ["topic"])
