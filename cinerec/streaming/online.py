"""Online metrics of the closed loop (``cinerec online``): impressions and clicks from the feedback
topic, ratings from the ratings topic, counted per minute and model variant.

    lists        impressions (lists shown)
    impressions  films shown (the CTR's denominator)
    clicks       clicks (CTR = clicks / impressions)
    conversions  clicked films the user then rated ≥ 4
    rejections   lists nobody clicked within ``REJECT_AFTER_MS``
    precision    shown films among the user's true top k (only with the world's hidden tastes)
    regret       mean expected rating of the true top k minus that of the shown films

Per minute and variant, documents ``<minute>:<variant>`` of the ``online_metrics`` index hold
the counts (added to what the documents hold, so the canary and the dashboard sum them over
any range), and Prometheus counters ``cinerec_online_*_total{variant}`` the totals. Drift
(``cinerec_drift_psi{feature}``): the population stability index of the last ``window`` ratings
against the champion's training data, for the rating distribution and for film popularity (the
training data's 50 most rated films and the rest), and the share of ratings by users or of films
the training data did not have (``cinerec_drift_unknown_share{kind}``).

Delivery is at least once: offsets are committed after the counts are written, so a crash
between the two counts a few events twice.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge

from cinerec.core.events import LIKED, InvalidEvent, RatingEvent, parse_event
from cinerec.core.feedback import Feedback, parse_feedback

MINUTE_MS = 60_000
REJECT_AFTER_MS = 60_000
CONVERT_WITHIN_MS = 3_600_000
RATING_BINS = np.arange(0.5, 5.01, 0.5)
TOP_FILMS = 50
COUNTS = ("lists", "impressions", "clicks", "conversions", "rejections")

ONLINE = {name: PromCounter(f"cinerec_online_{name}_total", f"Online {name} by model variant", ["variant"])
          for name in COUNTS}
PRECISION = Gauge("cinerec_online_precision", "Mean precision of the lists shown against the hidden tastes "
                                              "(simulated users only), last 1,000 lists", ["variant"])
DRIFT = Gauge("cinerec_drift_psi", "Population stability index of recent ratings vs the champion's training data",
              ["feature"])
UNKNOWN = Gauge("cinerec_drift_unknown_share", "Share of recent ratings by users / of films the training data lacks",
                ["kind"])


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    """Σ (a − e) · ln(a / e) over bins of two distributions (each normalised; empty bins floored)."""
    e = np.maximum(expected / max(expected.sum(), 1e-12), floor)
    a = np.maximum(actual / max(actual.sum(), 1e-12), floor)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Reference:
    """What the champion was trained on, for drift: rating histogram, most rated films, ids."""
    ratings: np.ndarray          # counts per RATING_BINS value
    top_films: list[int]
    top_shares: np.ndarray       # share of each top film, then the rest
    users: set[int]
    films: set[int]

    @classmethod
    def of(cls, ratings) -> Reference:
        """``ratings``: a frame with user_id, movie_id, rating."""
        counts = ratings["movie_id"].value_counts()
        top = [int(m) for m in counts.index[:TOP_FILMS]]
        shares = np.append(counts.iloc[:TOP_FILMS].to_numpy(), counts.iloc[TOP_FILMS:].sum()).astype(float)
        return cls(_histogram(ratings["rating"].to_numpy()), top, shares, set(map(int, ratings["user_id"])),
                   set(map(int, counts.index)))


def _histogram(values: np.ndarray) -> np.ndarray:
    return np.array([np.sum(np.isclose(values, b)) for b in RATING_BINS], dtype=float)


class OnlineMetrics:
    def __init__(self, es=None, *, index: str = "online_metrics", truth=None, reference: Reference | None = None,
                 window: int = 5000):
        """``truth(user, shown) -> (precision, regret) | None``: the hidden tastes' verdict, when known."""
        self.es, self.index, self.truth, self.reference = es, index, truth, reference
        self.pending: dict[tuple[int, str], Counter] = {}
        # request id -> (minute, variant, ts, clicked?) of lists not yet judged
        self.lists: OrderedDict[str, tuple[int, str, int, bool]] = OrderedDict()
        # (user, film) -> (variant, minute, ts) of clicks not yet rated
        self.clicked: OrderedDict[tuple[int, int], tuple[str, int, int]] = OrderedDict()
        self.recent: deque[RatingEvent] = deque(maxlen=window)
        self.precision: dict[str, deque] = {}

    # -- events -------------------------------------------------------------------------------

    def feedback(self, event: Feedback) -> None:
        minute = event.ts - event.ts % MINUTE_MS
        if event.kind == "impression":
            self._add(minute, event.variant, lists=1, impressions=len(event.movie_ids))
            self.lists[event.request_id] = (minute, event.variant, event.ts, False)
            verdict = self.truth(event.user_id, list(event.movie_ids)) if self.truth else None
            if verdict:
                self._add(minute, event.variant, precision_sum=verdict[0], regret_sum=verdict[1])
                self.precision.setdefault(event.variant, deque(maxlen=1000)).append(verdict[0])
        else:
            self._add(minute, event.variant, clicks=1)
            if event.request_id in self.lists:
                m, variant, ts, _ = self.lists[event.request_id]
                self.lists[event.request_id] = (m, variant, ts, True)
            if event.movie_id is not None:                # a click names its film (core.feedback)
                self.clicked[(event.user_id, event.movie_id)] = (event.variant, minute, event.ts)

    def rating(self, event: RatingEvent) -> None:
        self.recent.append(event)
        hit = self.clicked.pop((event.user_id, event.movie_id), None)
        if hit and event.rating >= LIKED and event.ts - hit[2] <= CONVERT_WITHIN_MS:
            self._add(hit[1], hit[0], conversions=1)

    def expire(self, now_ms: int) -> None:
        """Lists older than ``REJECT_AFTER_MS``: a rejection if nobody clicked; clicks forgotten after an hour."""
        while self.lists:
            request, (minute, variant, ts, clicked) = next(iter(self.lists.items()))
            if now_ms - ts < REJECT_AFTER_MS:
                break
            self.lists.popitem(last=False)
            if not clicked:
                self._add(minute, variant, rejections=1)
        while self.clicked and now_ms - next(iter(self.clicked.values()))[2] > CONVERT_WITHIN_MS:
            self.clicked.popitem(last=False)

    def _add(self, minute: int, variant: str, **counts: float) -> None:
        self.pending.setdefault((minute, variant), Counter()).update(counts)

    # -- output -------------------------------------------------------------------------------

    def flush(self) -> int:
        """Adds the pending counts to Elasticsearch and Prometheus; returns the documents written."""
        pending, self.pending = self.pending, {}
        if self.es is not None and pending:
            try:
                self._write(pending)
            except Exception:
                for key, counts in pending.items():            # kept for the next flush
                    self.pending.setdefault(key, Counter()).update(counts)
                raise
        for (_, variant), counts in pending.items():
            for name in COUNTS:
                if counts.get(name):
                    ONLINE[name].labels(variant).inc(counts[name])
        for variant, values in self.precision.items():
            PRECISION.labels(variant).set(float(np.mean(values)))
        self._drift()
        return len(pending)

    def _write(self, pending: dict[tuple[int, str], Counter]) -> None:
        """Adds the counts to the minute documents: read, add, write (this consumer is their only
        writer; the embedded Elasticsearch has no scripting module for in-place increments)."""
        ids = [f"{minute}:{variant}" for minute, variant in pending]
        current = {d["_id"]: d.get("_source", {}) for d in self.es.mget(index=self.index, ids=ids)["docs"]
                   if d.get("found")}
        operations = []
        for (minute, variant), counts in pending.items():
            doc_id = f"{minute}:{variant}"
            doc = {"minute": minute, "variant": variant, **{k: current.get(doc_id, {}).get(k, 0) + v
                                                              for k, v in counts.items()}}
            doc.update({k: v for k, v in current.get(doc_id, {}).items() if k not in doc})
            operations += [{"index": {"_index": self.index, "_id": doc_id}}, doc]
        answer = self.es.bulk(operations=operations, refresh=True)
        if answer.get("errors"):
            raise RuntimeError(f"online metrics not written: {answer['items'][0]}")

    def _drift(self) -> None:
        if self.reference is None or len(self.recent) < 100:
            return
        ref = self.reference
        ratings = np.array([e.rating for e in self.recent])
        DRIFT.labels("rating").set(psi(ref.ratings, _histogram(ratings)))
        films = Counter(e.movie_id for e in self.recent)
        shares = np.array([films.get(m, 0) for m in ref.top_films] + [sum(films.values()) - sum(
            films.get(m, 0) for m in ref.top_films)], dtype=float)
        DRIFT.labels("popularity").set(psi(ref.top_shares, shares))
        UNKNOWN.labels("user").set(sum(e.user_id not in ref.users for e in self.recent) / len(self.recent))
        UNKNOWN.labels("film").set(sum(e.movie_id not in ref.films for e in self.recent) / len(self.recent))

    def drift(self) -> dict[str, float]:
        return {f"psi_{f}": DRIFT.labels(f)._value.get() for f in ("rating", "popularity")}


def consume(kafka, metrics: OnlineMetrics, stop, *, flush_s: float = 2.0, group: str = "cinerec-online") -> None:
    """Reads feedback and ratings until ``stop`` is set, flushing and committing every ``flush_s``."""
    from cinerec.platform.kafka import new_consumer

    consumer = new_consumer(kafka, group, {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([kafka.feedback_topic, kafka.ratings_topic])
    flushed, unsaved = time.monotonic(), 0
    try:
        while not stop.is_set():
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                unsaved += 1
                try:
                    if message.topic() == kafka.feedback_topic:
                        metrics.feedback(parse_feedback(message.value() or b""))
                    else:
                        metrics.rating(parse_event(message.value() or b""))
                except InvalidEvent:
                    continue            # the streaming job dead-letters bad ratings; bad feedback is ignored
            if time.monotonic() - flushed >= flush_s:
                flushed = time.monotonic()
                metrics.expire(int(time.time() * 1000))
                try:
                    metrics.flush()
                except Exception as err:  # noqa: BLE001 - Elasticsearch away: the counts wait for the next flush
                    print(f"online: counts not written yet ({str(err)[:200]})", file=sys.stderr, flush=True)
                    continue
                if unsaved:
                    consumer.commit(asynchronous=False)
                    unsaved = 0
    finally:
        try:
            metrics.flush()
        finally:
            consumer.close()


def arms_since(es, started_ms: int, until_ms: int | None = None, index: str = "online_metrics", *,
               after_ms: int | None = None) -> dict[str, dict]:
    """Summed counts per variant of the minutes from ``started_ms`` (to ``until_ms``); with
    ``after_ms`` (when the previous canary was decided) not the minute that holds it, whose counts
    may be that canary's (a canary opened in the minute the last one ended would inherit them)."""
    aggs = {"variant": {"terms": {"field": "variant"}, "aggs": {
        name: {"sum": {"field": name}} for name in (*COUNTS, "precision_sum", "regret_sum")}}}
    first = started_ms - started_ms % MINUTE_MS
    if after_ms is not None:
        first = max(first, after_ms - after_ms % MINUTE_MS + MINUTE_MS)
    minutes = {"gte": first, **({"lte": until_ms} if until_ms is not None else {})}
    found = es.search(index=index, size=0, query={"range": {"minute": minutes}}, aggs=aggs, ignore_unavailable=True)
    return {b["key"]: {name: b[name]["value"] for name in (*COUNTS, "precision_sum", "regret_sum")}
            for b in found.get("aggregations", {}).get("variant", {}).get("buckets", [])}


def ctr(counts: dict) -> float:
    return counts.get("clicks", 0) / counts["impressions"] if counts.get("impressions") else math.nan
