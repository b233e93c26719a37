"""Prometheus metrics for operators: GET /metrics (text exposition format).

Counts come from the database at scrape time, so every worker process and instance reports the same totals
(conversations, turns by outcome, ratings by score, handoff tickets, undelivered channel messages). The turn
latency histogram is per process (Prometheus sums the series of several workers).

Access: with VNA_METRICS_TOKEN set, a request needs `Authorization: Bearer <token>`; without it, only clients on
the same machine (loopback) are answered. Simulated (demo) data is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine as SqlEngine

from bot.schema import channel_outbox, conversations, handoff_tickets, ratings, turns

log = logging.getLogger(__name__)

KNOWN_CHANNELS = {"web", "telegram", "zalo", "api", "cli", "phone"}
REGISTRY = CollectorRegistry(auto_describe=True)
TURN_LATENCY = Histogram(
    "vna_turn_latency_seconds", "Time to answer one turn (this process), by channel", ["channel"],
    buckets=(0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0, 5.0), registry=REGISTRY,
)


def channel_label(channel: str) -> str:
    """Channel names come from clients: only known ones become label values (bounded cardinality)."""
    return channel if channel in KNOWN_CHANNELS else "other"


def observe_turn(channel: str, seconds: float) -> None:
    TURN_LATENCY.labels(channel_label(channel)).observe(seconds)


class DatabaseCollector:
    """Totals read from the database at each scrape."""

    def __init__(self, db: SqlEngine) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:  # prometheus_client's Collector protocol
        try:
            with self.db.connect() as conn:
                convs = conn.execute(select(conversations.c.channel, func.count())
                                     .where(conversations.c.simulated.is_(False))
                                     .group_by(conversations.c.channel)).all()
                turn_counts = conn.execute(select(turns.c.channel, turns.c.outcome, func.count())
                                           .where(turns.c.simulated.is_(False))
                                           .group_by(turns.c.channel, turns.c.outcome)).all()
                rating_counts = conn.execute(select(ratings.c.channel, ratings.c.score, func.count())
                                             .where(ratings.c.simulated.is_(False))
                                             .group_by(ratings.c.channel, ratings.c.score)).all()
                ticket_counts = conn.execute(select(handoff_tickets.c.channel, handoff_tickets.c.status, func.count())
                                             .where(handoff_tickets.c.simulated.is_(False))
                                             .group_by(handoff_tickets.c.channel, handoff_tickets.c.status)).all()
                outbox = conn.execute(select(channel_outbox.c.channel, channel_outbox.c.status, func.count())
                                      .where(channel_outbox.c.status != "sent")
                                      .group_by(channel_outbox.c.channel, channel_outbox.c.status)).all()
        except Exception:  # a scrape must not fail because the database hiccuped
            log.exception("metrics: reading the database failed")
            return
        family = GaugeMetricFamily("vna_conversations", "Conversations recorded, by channel", labels=["channel"])
        for channel, n in convs:
            family.add_metric([channel_label(channel)], n)
        yield family
        family = GaugeMetricFamily("vna_turns", "Turns recorded, by channel and outcome",
                                   labels=["channel", "outcome"])
        for channel, outcome, n in turn_counts:
            family.add_metric([channel_label(channel), outcome], n)
        yield family
        family = GaugeMetricFamily("vna_ratings", "Citizen ratings (1-5), by channel and score",
                                   labels=["channel", "score"])
        for channel, score, n in rating_counts:
            family.add_metric([channel_label(channel), str(score)], n)
        yield family
        family = GaugeMetricFamily("vna_handoff_tickets", "Handoff tickets, by channel and status",
                                   labels=["channel", "status"])
        for channel, status, n in ticket_counts:
            family.add_metric([channel_label(channel), status], n)
        yield family
        family = GaugeMetricFamily("vna_outbox_undelivered", "Channel messages not delivered yet (pending/sending) "
                                   "or given up (failed)", labels=["channel", "status"])
        for channel, status, n in outbox:
            family.add_metric([channel, status], n)
        yield family


def exposition(db: SqlEngine) -> bytes:
    """The text a scrape gets: this process's latency histogram and the database totals."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db))
    return generate_latest(REGISTRY) + generate_latest(registry)
