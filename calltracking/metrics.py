"""Prometheus metrics (`/metrics` in the web UI).

Process metrics are updated by the components running in this process
(FastAGI latency, AMI events, reconnects); database-derived figures (calls by
status, pool usage, exhaustion, job failures) are read at scrape time by
:class:`DatabaseCollector`, so they are right whichever process wrote them.
"""
from __future__ import annotations

import datetime as dt
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

AGI_REQUESTS = Counter("calltracking_agi_requests", "FastAGI hook requests", ["hook", "result"],
                       registry=REGISTRY)
AGI_LATENCY = Histogram("calltracking_agi_latency_seconds", "Time to answer a FastAGI hook", ["hook"],
                        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                        registry=REGISTRY)
AMI_EVENTS = Counter("calltracking_ami_events", "AMI events received", registry=REGISTRY)
AMI_UNKNOWN_EVENTS = Counter("calltracking_ami_unknown_events", "AMI events skipped (unknown type)",
                             registry=REGISTRY)
AMI_QUARANTINED = Counter("calltracking_ami_events_quarantined",
                          "AMI events with a bad value: skipped (nul_byte, value_too_long, id_too_long, "
                          "handler_error, write_failed) or kept with it replaced (timestamp, undecodable)",
                          ["reason"], registry=REGISTRY)
AMI_LAG = Gauge("calltracking_ami_lag_seconds", "Event time to committed record, last batch",
                registry=REGISTRY)
AMI_QUEUE = Gauge("calltracking_ami_queue_depth", "Events waiting for the writer", registry=REGISTRY)
AMI_RECONNECTS = Counter("calltracking_ami_reconnects", "AMI reconnections", registry=REGISTRY)
AMI_CONNECTED = Gauge("calltracking_ami_connected", "1 while logged in to AMI", registry=REGISTRY)


class DatabaseCollector:
    """Figures read from the database at scrape time."""

    def __init__(self, sessionmaker, transcripts_config=None):
        self.sessionmaker = sessionmaker
        self.transcripts_config = transcripts_config   # [transcripts]: the backlog is 0 without it

    def collect(self):
        from calltracking.models import Call, NumberPool

        calls = CounterMetricFamily("calltracking_calls", "Calls recorded, by status", labels=["status"])
        today = GaugeMetricFamily("calltracking_calls_today", "Calls since 00:00 UTC, by status",
                                  labels=["status"])
        pool_size = GaugeMetricFamily("calltracking_pool_numbers", "Active numbers in a pool", labels=["pool"])
        pool_used = GaugeMetricFamily("calltracking_pool_numbers_in_use", "Pool numbers held by a live session",
                                      labels=["pool"])
        pool_new = GaugeMetricFamily("calltracking_pool_numbers_provisional", "Pool numbers held provisionally "
                                     "(a new hold not confirmed by a heartbeat yet)", labels=["pool"])
        pressure = GaugeMetricFamily("calltracking_pool_pressure", "Share of a pool's numbers held (0-1)",
                                     labels=["pool"])
        exhausted = CounterMetricFamily("calltracking_pool_exhausted", "Times a pool had no free number",
                                        labels=["pool"])
        up = GaugeMetricFamily("calltracking_database_up", "1 when the database answered the scrape")
        try:
            with self.sessionmaker() as s:
                for status, n in s.execute(select(Call.status, func.count()).group_by(Call.status)):
                    calls.add_metric([status], n)
                midnight = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
                for status, n in s.execute(select(Call.status, func.count()).where(Call.started_at >= midnight)
                                           .group_by(Call.status)):
                    today.add_metric([status], n)
                from calltracking.dni.holds import pool_status

                for pool in s.scalars(select(NumberPool)):
                    label = f"{pool.project_id}/{pool.name}"
                    st = pool_status(s, pool)
                    pool_size.add_metric([label], st["numbers"])
                    pool_used.add_metric([label], st["held"])
                    pool_new.add_metric([label], st["provisional"])
                    if st["pressure"] is not None:
                        pressure.add_metric([label], st["pressure"])
                    exhausted.add_metric([label], pool.exhausted_count or 0)
            up.add_metric([], 1)
        except Exception as e:  # a scrape never fails because the DB is down
            log.warning("metrics: database unavailable: %s", e)
            up.add_metric([], 0)
        yield from (calls, today, pool_size, pool_used, pool_new, pressure, exhausted, up)
        yield from self._jobs()
        yield from self._transcripts()

    def _jobs(self):
        from calltracking.models import JobStatus

        runs = CounterMetricFamily("calltracking_job_runs", "Scheduled job runs", labels=["job"])
        failures = CounterMetricFamily("calltracking_job_failures", "Scheduled job failures", labels=["job"])
        last_ok = GaugeMetricFamily("calltracking_job_last_success_timestamp_seconds",
                                    "When the job last succeeded (Unix time)", labels=["job"])
        try:
            with self.sessionmaker() as s:
                for j in s.scalars(select(JobStatus).order_by(JobStatus.name)):
                    runs.add_metric([j.name], j.runs or 0)
                    failures.add_metric([j.name], j.failures or 0)
                    if j.last_ok_at is not None:
                        last_ok.add_metric([j.name], j.last_ok_at.timestamp())
        except Exception as e:
            log.warning("metrics: job figures unavailable: %s", e)
        yield from (runs, failures, last_ok)


    def _transcripts(self):
        from calltracking.transcripts.backlog import figures

        waiting = GaugeMetricFamily("calltracking_transcripts_backlog",
                                    "Recorded calls waiting for a transcript")
        by_status = GaugeMetricFamily("calltracking_transcripts", "Transcripts, by status", labels=["status"])
        try:
            with self.sessionmaker() as s:
                fig = figures(s, self.transcripts_config)
            waiting.add_metric([], fig["backlog"])
            for status, n in fig["statuses"].items():
                by_status.add_metric([status], n)
        except Exception as e:
            log.warning("metrics: transcript figures unavailable: %s", e)
        yield from (waiting, by_status)


def render(sessionmaker, transcripts_config=None) -> bytes:
    """The text exposition of this process's metrics plus the database figures."""
    reg = CollectorRegistry()
    reg.register(_Wrapped(REGISTRY))
    reg.register(DatabaseCollector(sessionmaker, transcripts_config))
    return generate_latest(reg)


class _Wrapped:
    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()
