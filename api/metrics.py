"""Prometheus metrics of one app instance.

Each app gets its own ``CollectorRegistry`` (never the process-global one) so
tests, and several apps in one process, do not collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Alert latency is seconds end to end (camera -> detector -> bus -> API); the
# buckets cover a healthy sub-second path up to a badly lagging consumer.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.incident_events = Counter(
            "cctv_api_incident_events_persisted",
            "Incident lifecycle messages persisted (redeliveries not counted)",
            ["rule", "event"],
            registry=r,
        )
        self.evidence_sealed = Counter(
            "cctv_api_evidence_sealed_persisted", "Sealed evidence items persisted", registry=r
        )
        self.camera_heartbeats = Counter(
            "cctv_api_camera_heartbeats_persisted",
            "Camera heartbeats that updated a camera's status",
            registry=r,
        )
        self.alert_latency = Histogram(
            "cctv_api_alert_latency_seconds",
            "first_received_at - threshold_at: from the rule's threshold to the API persisting the incident",
            ["rule"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.downloads = Counter(
            "cctv_api_evidence_downloads",
            "Evidence downloads by artifact and result",
            ["kind", "result"],
            registry=r,
        )
        self.integrity_failures = Counter(
            "cctv_api_evidence_integrity_failures",
            "Downloads refused because the stored bytes did not match the recorded SHA-256",
            ["kind"],
            registry=r,
        )
        self.fixity_checks = Counter(
            "cctv_fixity_checks",
            "Targets re-read by the fixity job, by target (evidence, export, redaction, checkpoint) and "
            "result (ok, mismatch, missing, error)",
            ["target", "result"],
            registry=r,
        )
        self.fixity_mismatches = Counter(
            "cctv_fixity_mismatches",
            "Stored versions whose SHA-256 or size no longer match the recorded values (or are gone), "
            "checkpoints whose signature no longer verifies, custody-log problems; by object kind",
            ["kind"],
            registry=r,
        )
        self.dead_letters = Counter(
            "cctv_api_persister_dead_letters",
            "Messages the persister sent to the dead-letter topic",
            registry=r,
        )
        self.persister_errors = Counter(
            "cctv_api_persister_errors",
            "Persister failures (batch retried, offsets not committed)",
            ["stage"],
            registry=r,
        )
        self.persister_lag = Gauge(
            "cctv_api_persister_lag_messages",
            "Messages not yet consumed by the persister, per topic",
            ["topic"],
            registry=r,
        )
        self.persister_committed = Gauge(
            "cctv_api_persister_last_commit_timestamp_seconds",
            "Unix time of the persister's last offset commit",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
