"""The driver side of one micro-batch: what the keyed state emitted -> Elasticsearch and the DLQ.

    user rows   (current ratings, choices) ─fold-in with the current model─▶ users (whole documents;
                                         deleted with the user's activity data when erased)
    film rows   (count, sum, likes, trending buckets)             ─▶ film_stats (partial documents of
                                                                     figures only: no vector, no text)
    rating rows (every valid event)                               ─▶ ratings (one doc per event id,
                                                                     with consent to analytics)
    dead rows                                                     ─▶ Kafka ``ratings.dlq`` and the
                                                                     ``dead_letters`` index (for dashboards)

Exactly once: every document holds absolute values under a deterministic id, computed from the
state Spark restored for the batch, so a batch Spark re-runs after a crash writes the same
documents again. Dead letters are at-least-once (a re-run may publish one twice; each carries
its source partition and offset).

Faults (``retry.py``): a write that fails because Elasticsearch or Kafka is away is retried with
backoff until it succeeds, so the batch waits and nothing is lost. A document Elasticsearch
rejects for its content (a 4xx other than 429), or a user whose fold-in raises, is about the data:
the events behind it go to the DLQ as ``processing_error`` and the batch goes on without them.

Users first: the user document (what makes a user's recommendations fresh; read by id, so real-time
without a refresh) is written before the film statistics and the audit ``ratings`` index, which go
out side by side; nothing is refreshed on the batch's path. The films'
stored "also watched" lists are re-scored off the batch, on a clock (``refresh_also_watched``), for
the films whose likes the stream changed.

Trending decays on a clock, not only when a film is rated: ``decay_trending`` (called every few
seconds by the job) re-counts the films whose oldest trending bucket has left the window, from
the buckets stored in their documents. It and ``process`` never run at the same time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cinerec.core.events import FIELDS, RatingEvent
from cinerec.core.foldin import FoldIn
from cinerec.search.documents import bayesian_average
from cinerec.search.indices import DEAD_LETTERS, RATINGS, bulk_write, versioned_name
from cinerec.search.privacy import erase_documents
from cinerec.search.queries import FILM_LISTS, FILM_STATS, FILMS, USERS

from . import metrics
from .neighbours import also_watched_updates
from .retry import Unavailable, retrying
from .state import RATING, SOURCE_COLUMNS, STATS_COLUMNS, live_buckets, trend_fields, user_state_document, user_vector
from .validate import Letter, Record, processing_error


@dataclass
class Model:
    """What streaming needs of the champion: item factors, how it was regularised and forgets."""
    item_ids: list[int]
    item_factors: np.ndarray
    regularization: float
    alpha: float
    version: str
    half_life_days: float = 0.0

    def fold(self) -> FoldIn:
        return FoldIn(self.item_factors, self.regularization, self.alpha, self.half_life_days)


@dataclass(frozen=True)
class Folding:
    """A model ready to fold users in: its solver and its films' row numbers."""
    model: Model
    fold: FoldIn
    item_index: dict[int, int]

    @classmethod
    def of(cls, model: Model) -> Folding:
        return cls(model, model.fold(), {int(m): i for i, m in enumerate(model.item_ids)})


USER_COLUMNS = ["entity", "ratings", "personalisation", "analytics", "erased", "basis", "privacy_changed",
                "duplicates"]
FILM_COLUMNS = ["entity", "rating_count", "rating_sum", "like_count", "trending", "trending_buckets",
                "trending_until"]
SEARCHABLE_AFTER_S = 1.5    # a write shows in searches of users / film_stats after their refresh interval (1 s)


class RatingProcessor:
    def __init__(self, *, es, producer, dlq_topic: str, model: Model, bayesian_prior: tuple[float, float],
                 champion: Callable[[str], Model | None] | None = None, check_model_s: float = 10.0,
                 canary: Callable[[str | None], Model | None | bool] | None = None,
                 all_users: Callable[[], Iterable[tuple[int, np.ndarray, dict]]] | None = None,
                 trending_window_ms: int = 3_600_000, neighbours_kept: int = 30):
        """``bayesian_prior``: (prior count C, global mean m) of the training data;
        ``champion(current version)``: the registry's champion when it is another version, else None;
        ``canary(current canary version or None)``: during a canary, the challenger when it is not
        the current one, ``True`` when it is, None without a canary; its users are folded in too
        and written to its own ``users`` index version, which serves the canary's users;
        ``all_users()``: every user's current ratings from the job's state; when given, users whose
        document was folded with another model are all re-folded at a batch boundary (at the first
        batch and after a model change), not only when they next rate."""
        self.es, self.producer, self.dlq_topic = es, producer, dlq_topic
        self.prior_count, self.prior_mean = bayesian_prior
        self.champion, self.check_model_s, self.checked_at = champion, check_model_s, time.monotonic()
        self.canary = canary
        self.challenger: Folding | None = None        # the challenger's model during a canary
        self.all_users, self.refold_pending = all_users, all_users is not None
        self.trending_window_ms = trending_window_ms
        self.neighbours_kept = neighbours_kept
        self.liked_changed: dict[int, float] = {}   # films rated since their list -> when (monotonic)
        self.lock = threading.Lock()     # a batch and the trending clock write films one at a time
        self.writers = ThreadPoolExecutor(1, thread_name_prefix="film-stats")   # a bulk beside the audit's
        self.stopping = threading.Event()  # set by the job when it stops: retries give up
        self.in_batch = False
        self.use(model)

    def use(self, model: Model) -> None:
        """Switches to a model (at a batch boundary): users are re-folded when they next change."""
        self.model, self.serving = model, Folding.of(model)
        metrics.MODEL_VERSION.set(float(model.version) if str(model.version).isdigit() else 0)

    def process(self, rows: pd.DataFrame, batch_id: int) -> dict:
        """``rows``: the rows ``RatingState`` emitted in one batch (``state.OUTPUT_COLUMNS``)."""
        with self.lock:
            self.in_batch = True               # the job's stall watch: the driver's own part is running
            try:
                return self._process(rows, batch_id)
            finally:
                self.in_batch = False

    def _process(self, rows: pd.DataFrame, batch_id: int) -> dict:
        clock = Clock()
        self._maybe_reload()
        refolded = self._retrying(self._refold_stale_users, "refold") if self.refold_pending else 0
        clock.lap("model")
        kinds = rows["kind"]
        user_rows = list(rows.loc[kinds == "user", USER_COLUMNS].itertuples(index=False, name="UserRow"))
        films = list(rows.loc[kinds == "film", FILM_COLUMNS].itertuples(index=False, name="FilmRow"))
        state = state_figures(rows.loc[kinds == "stats", STATS_COLUMNS])
        events = accepted_events(rows[kinds == "rating"])
        duplicates = int(sum(u.duplicates for u in user_rows))
        current = [(int(u.entity), np.frombuffer(u.ratings, dtype=RATING), choices(u)) for u in user_rows
                   if u.ratings is not None and not u.erased]
        clock.lap("decode")
        users, failed_users = self._user_documents(current)
        clock.lap("fold_in")
        self._retrying(lambda: self._apply_privacy(user_rows), "privacy")
        rejected = self._retrying(lambda: self._write(events, users, films, failed_users, clock), "write")
        if (challenger := self.challenger) is not None:
            self._retrying(lambda: self._write_challenger_users(current, challenger), "challenger users")
            clock.lap("challenger_users")
        events = [e for e in events if e["event_id"] not in rejected]
        letters = letters_of(rows[kinds == "dead"]) + [dead_letter(e, err) for e, err in rejected.values()]
        if letters:
            self._retrying(lambda: self._publish(letters), "dead letters")
            self._retrying(lambda: self._index_dead_letters(letters), "dead letters index")
            clock.lap("dead_letters")
        self.liked_changed.update((int(film.entity), time.monotonic()) for film in films)
        metrics.observe_batch(accepted=len(events), dead=len(letters), duplicates=duplicates,
                              seconds=clock.total(), phases=clock.laps, state=state,
                              freshness=[(self.users_written_ms - e["record_ts"]) / 1000 for e in events
                                         if e["record_ts"]])
        record_ts = [e["record_ts"] for e in events if e["record_ts"]]
        return {"batch": batch_id, "records": len(events) + len(letters), "accepted": len(events),
                "dead": len(letters), "duplicates": duplicates, "users": len(users),
                "films": len(films), "model_version": self.model.version, "refolded": refolded,
                "seconds": round(clock.total(), 3), "driver": clock.rounded(), "state": state,
                "record_ts": [min(record_ts), max(record_ts)] if record_ts else None}

    def _retrying(self, step, what: str):
        return retrying(step, what=what, stop=self.stopping)

    def _apply_privacy(self, users: list) -> None:
        """Erased users: their document and activity data go; analytics withdrawn: their activity data."""
        for user in users:
            if user.erased or (user.privacy_changed and not user.analytics):
                erase_documents(self.es, int(user.entity), users=USERS, ratings=RATINGS,
                                dead_letters=DEAD_LETTERS, analytics_only=not user.erased)

    def _user_documents(self, users: list[tuple[int, np.ndarray, dict]],
                        folding: Folding | None = None) -> tuple[list, dict[int, Exception]]:
        """(user id, document) of each user (folded with the champion or ``folding``), and the users
        whose fold-in raised (their events are dead-lettered)."""
        documents, failed = [], {}
        for user, ratings, privacy in users:
            try:
                documents.append((user, self.user_document(user, ratings, privacy, folding)))
            except Exception as err:  # noqa: BLE001 - about this user's data: dead-lettered, the batch goes on
                failed[user] = err
        return documents, failed

    def _publish(self, letters: list[Letter]) -> None:
        """Dead letters to the DLQ; raises ``Unavailable`` unless Kafka acknowledged every one."""
        errors: list = []

        def delivered(err, msg) -> None:
            if err:
                errors.append(err)

        for letter in letters:
            self.producer.produce(self.dlq_topic, key=letter.key.encode(), value=letter.letter.encode(),
                                  headers=letter.headers(), on_delivery=delivered)
        left = self.producer.flush(30)
        if left or errors:
            raise Unavailable(f"{left or len(errors)} dead letters not acknowledged by Kafka: "
                              f"{errors[0] if errors else 'timed out'}")

    def user_document(self, user: int, ratings: np.ndarray, privacy: dict, folding: Folding | None = None) -> dict:
        """The whole ``users`` document of a user's current ratings (``state.RATING`` records):
        vector solved from every one (only with consent to personalisation) with the champion (or
        ``folding``'s model), liked, rated, privacy choices."""
        folding = folding or self.serving
        vector = user_vector(folding.fold, folding.item_index, ratings) if privacy["personalisation"] else None
        return user_state_document(user, ratings, vector, folding.model.version, privacy)

    def _write_challenger_users(self, users: list[tuple[int, np.ndarray, dict]], challenger: Folding) -> None:
        """The batch's users folded with the challenger, into its ``users`` version (a user whose
        fold-in fails keeps the older document: the champion's side dead-letters the events)."""
        documents, _ = self._user_documents(users, challenger)
        if documents:
            index = versioned_name(USERS, challenger.model.version)
            self._fail_on([bulk_write(self.es, index, ((str(u), doc) for u, doc in documents))])

    def film_document(self, film) -> dict:
        """The ``film_stats`` figures of a film row (``FILM_COLUMNS``) as the state step emitted it."""
        count, total = int(film.rating_count), float(film.rating_sum)
        return {"rating_count": count, "rating_mean": total / count if count else None,
                "like_count": int(film.like_count),
                "bayesian_avg": bayesian_average(total, count, self.prior_count, self.prior_mean)
                if self.prior_count + count else None,
                "trending": int(film.trending), "trending_buckets": film.trending_buckets,
                "trending_until": _int_or_none(film.trending_until)}

    def decay_trending(self, now_ms: int | None = None) -> int:
        """Re-counts the trending of films whose oldest bucket has left the window; returns how many."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            hits = self.es.search(index=FILM_STATS, size=10_000, source=["trending_buckets"],
                                  query={"range": {"trending_until": {"lte": now}}})["hits"]["hits"]
            if not hits:
                return 0
            docs = []
            for hit in hits:
                buckets = {int(b): n for b, n in json.loads(hit["_source"].get("trending_buckets") or "[]")}
                docs.append((hit["_id"], trend_fields(live_buckets(buckets, now, self.trending_window_ms),
                                                      self.trending_window_ms)))
            self._fail_on([bulk_write(self.es, FILM_STATS, docs, op="update")])
            return len(docs)

    def refresh_also_watched(self, limit: int = 100, settled_s: float = SEARCHABLE_AFTER_S) -> int:
        """Re-scores the stored "also watched" lists of up to ``limit`` films whose likes changed
        since their list was computed; returns how many. Runs on the job's clock thread without
        holding up a batch: it writes ``film_lists``, which no batch writes. A film waits until its
        change is ``settled_s`` old: the counts come from searches of ``users``, which show a write
        only after that index's refresh interval (the job never refreshes)."""
        settled = time.monotonic() - settled_s
        with self.lock:
            chosen = sorted(m for m, changed in self.liked_changed.items() if changed <= settled)[:limit]
            changed = {m: self.liked_changed.pop(m) for m in chosen}
        if not chosen:
            return 0
        try:
            updates = also_watched_updates(self.es, chosen, films=FILMS,
                                           film_stats=FILM_STATS,
                                           users=USERS, size=self.neighbours_kept)
            self._fail_on([bulk_write(self.es, FILM_LISTS, updates, op="update")])
        except Exception:
            with self.lock:
                for movie, when in changed.items():      # try them again on the next tick
                    self.liked_changed.setdefault(movie, when)
            raise
        return len(updates)

    # -- writes -----------------------------------------------------------------------------

    def _index_dead_letters(self, letters: list[Letter]) -> None:
        """One document per dead letter (id = source partition:offset, so a re-run rewrites it):
        reason, detail, source position, record time. Only the Kafka DLQ keeps the original bytes."""
        report = bulk_write(self.es, DEAD_LETTERS, (
            (letter.key, {"reason": letter.reason, "detail": letter.detail[:500], "user_id": letter.user_id,
                          "partition": letter.source_partition, "offset": letter.source_offset,
                          "ts": letter.record_ts or None}) for letter in letters))
        _rejected(report)          # refused for its content: it is in the Kafka DLQ all the same

    def _write(self, events: list[dict], users: list[tuple[int, dict]], films: list,
               failed_users: dict[int, Exception], clock: Clock) -> dict[str, tuple[dict, Exception]]:
        """Writes a batch; returns the events to dead-letter instead ({event id: (event, error)}):
        those of users whose fold-in failed and of documents Elasticsearch rejected for their content.
        Raises ``Unavailable`` (the caller retries the whole, which is idempotent) on other failures.

        Users first, in a bulk of their own: a recommendation reads the user document by id,
        which is real-time without a refresh, so a rating is reflected once that bulk returns. Then
        the film statistics and the audit ``ratings`` index at the same time (two bulks in flight:
        Elasticsearch indexes them on its cores while the driver waits once). No refresh: each index
        becomes searchable at its own ``refresh_interval`` (its mapping), so no batch waits for one.
        An event whose film statistics Elasticsearch rejected is taken out of ``ratings`` again."""
        rejected = {e["event_id"]: (e, failed_users[e["user_id"]]) for e in events if e["user_id"] in failed_users}
        users_report = bulk_write(self.es, USERS, ((str(u), doc) for u, doc in users))
        for user, err in _rejected(users_report).items():
            rejected.update({e["event_id"]: (e, err) for e in events if str(e["user_id"]) == user})
        self.users_written_ms = time.time() * 1000
        clock.lap("write_users")
        by_id = {e["event_id"]: e for e in events}
        audited = [e for e in events if e["event_id"] not in rejected and e["analytics"]]
        films_written = self.writers.submit(bulk_write, self.es, FILM_STATS, (
            (str(int(film.entity)), self.film_document(film)) for film in films), op="update")
        ratings_report = bulk_write(self.es, RATINGS, (
            (e["event_id"], {k: e[k] for k in FIELDS}) for e in audited))
        rejected.update({event_id: (by_id[event_id], err) for event_id, err in _rejected(ratings_report).items()})
        films_report = films_written.result()
        for film, err in _rejected(films_report).items():
            refused = {e["event_id"]: (e, err) for e in events if str(e["movie_id"]) == film}
            rejected.update(refused)
            audited_ids = {e["event_id"] for e in audited}
            self._fail_on([bulk_write(self.es, RATINGS,
                                      ((i, {}) for i in refused if i in audited_ids), op="delete")])
        clock.lap("write_films_and_ratings")
        return rejected

    @staticmethod
    def _fail_on(reports: list[dict]) -> None:
        failed = [r for r in reports if r["failed"]]
        if failed:
            raise Unavailable(f"Elasticsearch rejected {sum(r['failed'] for r in failed)} documents "
                              f"in {[r['index'] for r in failed]}: {failed[0]['errors'][:1]}")

    def _maybe_reload(self) -> None:
        if time.monotonic() - self.checked_at < self.check_model_s:
            return
        self.checked_at = time.monotonic()
        newer = self.champion(self.model.version) if self.champion is not None else None
        if newer is not None:
            self.use(newer)
            self.refold_pending = self.all_users is not None
        if self.canary is not None:
            current = self.challenger.model.version if self.challenger else None
            challenger = self._retrying(lambda: self.canary(current), "canary")   # waits out an outage
            if challenger is not True:
                self.challenger = Folding.of(challenger) if challenger is not None else None

    def _refold_stale_users(self) -> int:
        """Re-folds every user whose document another model folded; idempotent, so a crash
        half-way is finished by the next run's first batch."""
        self.refold_pending = False
        stale = self.es.count(index=USERS, query={"bool": {"must_not": [
            {"term": {"model_version": self.model.version}}]}})["count"]
        if not stale or self.all_users is None:
            return 0
        report = bulk_write(self.es, USERS,
                            ((str(u), self.user_document(u, r, p)) for u, r, p in self.all_users()))
        self._fail_on([report])
        self.es.indices.refresh(index=USERS)
        return report["written"]


class Clock:
    """Seconds per named phase of a batch, in order (``lap`` ends the phase running since the last)."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = self.laps.get(phase, 0.0) + now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.started

    def rounded(self) -> dict[str, float]:
        return {phase: round(seconds, 3) for phase, seconds in self.laps.items()}


def state_figures(groups: pd.DataFrame) -> dict:
    """The state step's own figures summed over its groups (``RatingState``'s "stats" rows): groups,
    input rows, entities, state-server calls and their seconds, and the Python handler's seconds."""
    sums = groups.sum()
    return {"groups": len(groups), **{c: int(sums[c]) for c in ("rows", "entities", "calls")},
            **{c: round(float(sums[c]), 3) for c in ("call_seconds", "seconds")}}


def choices(user) -> dict:
    """The privacy choices in force of a user row (``USER_COLUMNS``), as documents take them."""
    return {"personalisation": bool(user.personalisation), "analytics": bool(user.analytics), "basis": user.basis}


def letters_of(rows: pd.DataFrame) -> list[Letter]:
    """The dead rows of a batch as ``Letter``s (Spark hands long columns holding nulls over as floats)."""
    return [Letter(reason, detail, letter, _int_or_none(user), _int_or_none(ts), int(partition), int(offset))
            for reason, detail, letter, user, ts, partition, offset
            in rows[list(Letter._fields)].itertuples(index=False, name=None)]


def _int_or_none(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _rejected(report: dict) -> dict[str, Exception]:
    """{document id: error} of the documents Elasticsearch refused for their content; raises
    ``Unavailable`` when it refused any for another reason (overloaded, shards unavailable)."""
    refused: dict[str, Exception] = {}
    for item in report["errors"]:
        (result,) = item.values()
        status = int(result.get("status", 0))
        if status == 429 or status >= 500 or not 400 <= status < 500:
            raise Unavailable(f"Elasticsearch refused a write to {report['index']} ({status}): "
                              f"{str(result.get('error'))[:200]}")
        error = result.get("error") or {}
        refused[str(result.get("_id"))] = ValueError(f"Elasticsearch rejected the {report['index']} document "
                                                     f"({status} {error.get('type')}): {error.get('reason')}")
    return refused


def accepted_events(rows: pd.DataFrame) -> list[dict]:
    """The rating rows of a batch as plain dicts: the event's fields, its source and ``analytics``
    (Spark hands long columns that may hold nulls over as floats)."""
    integers = {c: "int64" for c in ("user_id", "movie_id", "ts", *SOURCE_COLUMNS)}
    return rows[[*FIELDS, *SOURCE_COLUMNS, "analytics"]].astype({**integers, "analytics": bool}).to_dict("records")


def dead_letter(event: dict, err: Exception) -> Letter:
    """The dead letter of an accepted event that a later step could not apply (``processing_error``)."""
    record = Record(RatingEvent(**{k: event[k] for k in FIELDS}).to_json(), event["source_partition"],
                    event["source_offset"], str(event["user_id"]).encode(), event["record_ts"] or None)
    return processing_error(err, record).letter()
