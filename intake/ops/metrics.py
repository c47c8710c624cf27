"""``/metrics``: Prometheus metrics, for the monitoring system only.

- **Request latency** per endpoint: ``intake_http_request_duration_seconds{endpoint, method, status}``
  (a histogram). The label is the Flask endpoint's name (``calls.detail``), never the path, so no
  reference, token or id reaches a label; a request no route matched is ``unmatched``.
- Read from the database when scraped, never on a user's request: the outbox backlog
  (``intake_outbox_messages{status}`` for pending, sending and failed) and the age of its oldest
  pending message, each periodic job's last success and last failure
  (``intake_job_last_success_timestamp_seconds{job}``), and the audit chain's last verification
  (``intake_audit_last_verified_timestamp_seconds`` and whether its latest run passed).

Under gunicorn every worker is a process: with ``PROMETHEUS_MULTIPROC_DIR`` set (intake.service and
the image set it; gunicorn.conf.py empties it at start and tells prometheus_client when a worker
exits) the endpoint adds up every worker's figures. Without it (``flask run``), this process's own.

The endpoint answers only a request with ``Authorization: Bearer <METRICS_TOKEN>``; without a
configured token it does not exist (404), and nginx never passes it on from the public site.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from intake.db_types import utcnow
from intake.extensions import db
from intake.notify.models import OutboxMessage, OutboxStatus
from intake.ops.models import JobRun, JobStatus

bp = Blueprint("metrics", __name__)

REQUEST_SECONDS = Histogram(
    "intake_http_request_duration_seconds", "Time to answer a request, by Flask endpoint, method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
AUDIT_JOB = "audit-verify"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _started() -> None:
    g.intake_request_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("intake_request_started", None)
    if started is not None:
        endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"  # a label never takes a client's word
        REQUEST_SECONDS.labels(endpoint, method, str(response.status_code)).observe(time.perf_counter() - started)
    return response


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class DatabaseCollector(Collector):
    """The figures read from the database at scrape time (a few indexed, grouped queries)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.app_context():
            try:
                yield from self._collect()
            except SQLAlchemyError:
                db.session.rollback()
                self.app.logger.warning("metrics: database unavailable")
                up = GaugeMetricFamily("intake_database_up", "1 when the database answered the scrape's queries.")
                up.add_metric([], 0)
                yield up
            finally:
                db.session.remove()

    def _collect(self) -> Iterator[Metric]:
        watched = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED)
        counts: dict[OutboxStatus, int] = dict(db.session.execute(select(OutboxMessage.status, func.count()).where(
            OutboxMessage.status.in_(watched)).group_by(OutboxMessage.status)).tuples().all())
        outbox = GaugeMetricFamily("intake_outbox_messages", "E-mails in the outbox by status (sent ones not counted).",
                                   labels=["status"])
        for status in watched:
            outbox.add_metric([status.value], counts.get(status, 0))
        yield outbox
        oldest = db.session.execute(select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING)).scalar_one()
        age = GaugeMetricFamily("intake_outbox_oldest_pending_age_seconds",
                                "Seconds the oldest e-mail still waiting to be sent has waited (0: none waits).")
        age.add_metric([], max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield age

        last = {(job, JobStatus(run_status)): when for job, run_status, when in db.session.execute(
            select(JobRun.job, JobRun.status, func.max(JobRun.started_at))
            .where(JobRun.status.in_((JobStatus.SUCCEEDED, JobStatus.FAILED)))
            .group_by(JobRun.job, JobRun.status)).all()}
        success = GaugeMetricFamily("intake_job_last_success_timestamp_seconds",
                                    "When each periodic job last started a run that succeeded (Unix time).",
                                    labels=["job"])
        failure = GaugeMetricFamily("intake_job_last_failure_timestamp_seconds",
                                    "When each periodic job last started a run that failed (Unix time).",
                                    labels=["job"])
        for (job, run_status), when in sorted(last.items()):
            (success if run_status is JobStatus.SUCCEEDED else failure).add_metric([job], _timestamp(when) or 0)
        yield success
        yield failure

        verified = last.get((AUDIT_JOB, JobStatus.SUCCEEDED))
        broken = last.get((AUDIT_JOB, JobStatus.FAILED))
        audit = GaugeMetricFamily("intake_audit_last_verified_timestamp_seconds",
                                  "When `flask audit verify` last found the audit chain intact (Unix time; 0: never).")
        audit.add_metric([], _timestamp(verified) or 0)
        yield audit
        ok = GaugeMetricFamily("intake_audit_chain_ok",
                               "1 when the latest `flask audit verify` found the chain intact, 0 when it failed.")
        ok.add_metric([], 1 if verified and (broken is None or verified > broken) else 0)
        yield ok
        up = GaugeMetricFamily("intake_database_up", "1 when the database answered the scrape's queries.")
        up.add_metric([], 1)
        yield up


def registry_for(app: Flask) -> CollectorRegistry:
    """The registry a scrape reads: every gunicorn worker's figures, or this process's; plus the database's."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(DatabaseCollector(app))
    return registry


@bp.route("/metrics")
def metrics() -> Response:
    """The Prometheus text format, for ``Authorization: Bearer <METRICS_TOKEN>`` only."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(403)
    body = generate_latest(registry_for(current_app._get_current_object()))  # type: ignore[attr-defined]
    response = Response(body, content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_started)
    app.after_request(_observe)
    app.register_blueprint(bp)

