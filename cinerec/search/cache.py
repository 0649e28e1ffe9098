"""What the API reads on every request, kept in its process with a stated bound on staleness.

    catalogue     each film's title, year and genres, and title -> films, and the served model (its
                  vectors and lists), for the ``films`` version being served: a version the alias
                  newly names (checked every ``api.alias_check_s``) is loaded ahead, then served
    statistics    ``film_stats`` documents by id, at most ``api.stats_ttl_s`` old (1 s: the index's own
                  refresh interval, so a search on it sees nothing newer either); the films read in the
                  last ``REFRESH_WINDOW_S`` are re-read ahead of expiry, in one ``mget`` every half TTL,
                  by a thread of the process, so a request on a film in use does not wait for them
    stored lists  a film's "also watched" and "similar" results, at most ``api.lists_ttl_s`` old (the
                  stream re-scores them every ``streaming.also_watched_refresh_s``)
    user hits     the served model's films for one user vector, rated films (and their ratings, for a
                  model with item-item parts), filters and ``films`` version: exact (unchanged inputs on
                  an unchanged index rank the same films)
    title hits    one search text on one ``films`` version: exact
A user document is never cached: it is read by id (real time) on every request, so a rating the
stream has folded in changes the user's vector and with it the kNN key. Each cache holds at most
``api.cache_entries`` entries (least recently used go first); 0 turns caching off.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from elasticsearch import Elasticsearch, NotFoundError
from prometheus_client import Counter

from cinerec.core.settings import ApiSettings

from . import indices, queries
from .served import ServedModel

MISSING = object()
REFRESH_WINDOW_S = 10.0
LOOKUPS = Counter("cinerec_api_cache_lookups_total", "Lookups in the API's in-process caches by cache "
                  "(statistics, lists, knn, titles) and outcome (hit, miss)", ["cache", "outcome"])


class Cache:
    """Least-recently-used entries, each valid for ``ttl_s`` seconds (None: until evicted)."""

    def __init__(self, name: str, entries: int, ttl_s: float | None = None, clock=time.monotonic):
        self.entries, self.ttl_s, self.clock = entries, ttl_s, clock
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.hit, self.miss = LOOKUPS.labels(name, "hit"), LOOKUPS.labels(name, "miss")

    def get(self, key):
        with self.lock:
            found = self.items.get(key, MISSING)
            fresh = found is not MISSING and (self.ttl_s is None or self.clock() - found[0] < self.ttl_s)
            if fresh:
                self.items.move_to_end(key)
        (self.hit if fresh else self.miss).inc()
        return found[1] if fresh else MISSING

    def put(self, key, value, at: float | None = None) -> None:
        """``at``: when the value was read (default now); its TTL counts from then."""
        if not self.entries:
            return
        with self.lock:
            self.items[key] = (self.clock() if at is None else at, value)
            self.items.move_to_end(key)
            while len(self.items) > self.entries:
                self.items.popitem(last=False)

    def cached(self, key, compute):
        found = self.get(key)
        if found is MISSING:
            found = compute()
            self.put(key, found)
        return found

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


@dataclass
class Catalogue:
    """The films of one ``films`` version: catalogue fields by id, ids by lower-cased title, and the
    model that ranks them (``search.served``), read in one scan."""
    version: str
    model: ServedModel
    films: dict[str, dict] = field(default_factory=dict)
    titles: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, es: Elasticsearch, version: str) -> Catalogue:
        model, docs = ServedModel.load(es, version, queries.CATALOGUE)
        catalogue = cls(version, model)
        for doc in docs:
            film, movie_id = {f: doc[f] for f in queries.CATALOGUE if f in doc}, str(doc["movie_id"])
            catalogue.films[movie_id] = film
            catalogue.titles.setdefault(film["title"].lower(), []).append(movie_id)
        return catalogue


class ServedFilms:
    """The API's reads of films, statistics, stored lists and kNN, through the caches above."""

    def __init__(self, es: Elasticsearch, api: ApiSettings, clock=time.monotonic, refresh_ahead: bool = True):
        self.es, self.api, self.clock = es, api, clock
        self.stats = Cache("statistics", api.cache_entries, api.stats_ttl_s, clock)
        self.lists = Cache("lists", api.cache_entries, api.lists_ttl_s, clock)
        self.knn = Cache("knn", api.cache_entries)
        self.titles = Cache("titles", api.cache_entries)
        self._catalogue: Catalogue | None = None
        self._other: Catalogue | None = None        # a canary's challenger version
        self._loading: str | None = None            # a version being loaded ahead
        self._loader: threading.Thread | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()
        self._read: dict[str, float] = {}          # film -> when its statistics were last asked for
        # the statistics' refresh-ahead thread: None until a read starts it, False when there is none
        self._refresher: threading.Thread | bool | None = (
            None if refresh_ahead and api.stats_ttl_s and api.cache_entries else False)

    # -- the served version ------------------------------------------------------------------

    def catalogue(self) -> Catalogue:
        """The catalogue of the ``films`` version being served. The alias is checked every
        ``alias_check_s``; a version it newly names is loaded by a thread of the process while
        requests go on with the one before (a rank-512 hybrid's vectors and lists took 7.7 s to
        load), and served from the first request after it is ready. The first version, or one
        whose predecessor is gone (``reload``), is loaded by the request that needs it."""
        if self.clock() - self._checked_at >= self.api.alias_check_s or self._catalogue is None:
            with self._lock:
                if self.clock() - self._checked_at >= self.api.alias_check_s or self._catalogue is None:
                    version = min(self.es.indices.get_alias(name=queries.FILMS))
                    if self._catalogue is None:
                        self._serve(Catalogue.load(self.es, version))
                    elif version not in (self._catalogue.version, self._loading):
                        self._loading = version
                        self._loader = threading.Thread(target=self._load_ahead, args=(version,),
                                                        name="catalogue", daemon=True)
                        self._loader.start()
                    self._checked_at = self.clock()
        assert self._catalogue is not None           # served above; never unset
        return self._catalogue

    def reload(self) -> Catalogue:
        """The version the alias names now, loaded by this call (the served one's index is gone)."""
        with self._lock:
            self._serve(Catalogue.load(self.es, min(self.es.indices.get_alias(name=queries.FILMS))))
            self._checked_at = self.clock()
        assert self._catalogue is not None           # served above; never unset
        return self._catalogue

    def settled(self, timeout_s: float = 60.0) -> Catalogue:
        """The catalogue once a version being loaded is served (for callers that must see it)."""
        self.catalogue()
        loader = self._loader
        if loader is not None:
            loader.join(timeout_s)
        return self.catalogue()

    def _load_ahead(self, version: str) -> None:
        try:
            catalogue = Catalogue.load(self.es, version)
        except Exception:  # noqa: BLE001 - the next alias check tries again; the served version goes on
            catalogue = None
        with self._lock:
            if catalogue is not None:
                self._serve(catalogue)
            self._loading = None

    def _serve(self, catalogue: Catalogue) -> None:
        """Called with the lock held."""
        self._catalogue = catalogue
        self.stats.clear()           # a new version comes with new film_stats and film_lists
        self.lists.clear()

    # -- reads -------------------------------------------------------------------------------

    def statistics(self, ids: list[str]) -> dict[str, dict]:
        """``film_stats`` by id: the fresh ones from the cache, the rest in one ``mget``."""
        found, wanted, now = {}, [], self.clock()
        for movie_id in ids:
            self._read[movie_id] = now
            stats = self.stats.get(movie_id)
            if stats is MISSING:
                wanted.append(movie_id)
            elif stats is not None:
                found[movie_id] = stats
        if wanted:
            found.update(self._read_statistics(wanted))
        if self._refresher is None:
            with self._lock:
                if self._refresher is None:
                    self._refresher = threading.Thread(target=self._refresh_ahead, name="statistics", daemon=True)
                    self._refresher.start()
        return found

    def _read_statistics(self, ids: list[str]) -> dict[str, dict]:
        asked_at = self.clock()                  # the TTL counts from before the read: a conservative bound
        fetched = queries.statistics(self.es, ids)
        for movie_id in ids:
            self.stats.put(movie_id, fetched.get(movie_id), at=asked_at)
        return fetched

    def _refresh_ahead(self) -> None:
        """Runs while films are being read; ends when none was for ``REFRESH_WINDOW_S`` (the next
        read starts it again), so an idle process keeps no thread polling Elasticsearch."""
        while True:
            time.sleep(self.api.stats_ttl_s / 2)
            cutoff = self.clock() - REFRESH_WINDOW_S
            with self._lock:
                self._read = {m: at for m, at in list(self._read.items()) if at >= cutoff}
                if not self._read:
                    self._refresher = None
                    return
            ids = list(self._read)
            try:
                for start in range(0, len(ids), 1000):
                    self._read_statistics(ids[start:start + 1000])
            except Exception:  # noqa: BLE001 - Elasticsearch away: requests read on a miss, as without this
                continue

    def with_statistics(self, films: list[dict]) -> list[dict]:
        return queries.joined(films, self.statistics([str(f["movie_id"]) for f in films]))

    def film_by_title(self, text: str) -> dict | None:
        """The film titled ``text`` ('Heat (1995)' picks the year), without a search: the exact
        title first, else the same title in other letter case; the most rated when several share it."""
        catalogue = self.catalogue()
        title, year = queries.parse_title(text)
        same = [catalogue.films[i] for i in catalogue.titles.get(title.lower(), [])
                if year in (None, catalogue.films[i].get("year"))]
        candidates = [f for f in same if f["title"] == title] or same
        if not candidates:
            return None
        films = self.with_statistics(candidates)
        return max(films, key=lambda f: f.get("rating_count") or 0)

    def find_titles(self, text: str, *, size: int) -> list[dict]:
        hits = self._on_served_version(lambda version: self.titles.cached(
            (version, text, size), lambda: queries.title_hits(self.es, text, size=size, index=version)))
        return queries.rank_titles(self.with_statistics(hits))

    def _on_served_version(self, read):
        """``read(version)`` on the served ``films`` version; if that index was deleted since the
        last alias check (pruned after two quick re-indexings), once more on the version named now."""
        try:
            return read(self.catalogue().version)
        except NotFoundError:
            return read(self.reload().version)

    def also_watched_or_popular(self, movie_id: int, *, size: int) -> list[dict]:
        """A film's stored "also watched" list, or the popular films when it has none (a cold film)."""
        self.catalogue()                                    # a new version clears the stored lists
        entries = self.lists.cached(("also_watched", movie_id, size), lambda: queries.also_watched_entries(
            queries.stored_lists(self.es, movie_id), size=size))
        return entries or queries.popular(self.es, size=size, exclude=[str(movie_id)])

    def recommend_for_user(self, user: dict, *, size: int, genres: list[str] | None = None,
                           years=(None, None), films: str | None = None) -> list[dict]:
        """The served model's ``size`` best films for ``user`` (``films``: a canary's own version),
        each with its reason (``ServedModel.reasons``). A model ranked by its factors alone is a
        kNN on the films' vectors, its hits reused while the user's vector, their rated films, the
        filters and the version are unchanged; any other is scored here (``ServedModel.recommend``)."""
        if "vector" not in user:
            return queries.recommend_for_user(self.es, user, size=size, genres=genres, years=years)

        def ranked(version: str) -> tuple[Catalogue, dict, list[dict]]:
            catalogue = self.catalogue() if films is None else self.version(version)
            model, known = catalogue.model, self._as_known_to(version, user)
            exclude = known.get("rated", [])
            if "vector" not in known:                     # unknown to that version: its popular films
                return catalogue, known, queries.popular(self.es, size=size, genres=genres, years=years,
                                                         exclude=exclude)
            key = hashlib.blake2b(orjson.dumps([version, size, genres, years, known["vector"], exclude,
                                                None if model.factor_only else known.get("ratings")]),
                                  digest_size=16).digest()
            if not model.factor_only:
                return catalogue, known, self.knn.cached(key, lambda: [
                    {**catalogue.films[str(m)], "score": score}
                    for m, score in model.recommend(known, size, genres=genres, years=years)])
            return catalogue, known, self.knn.cached(key, lambda: queries.knn_hits(
                self.es, known["vector"], size, exclude=exclude, genres=genres, years=years, index=version))
        catalogue, user, hits = ranked(films) if films else self._on_served_version(ranked)
        reasons = catalogue.model.reasons(user, [int(f["movie_id"]) for f in hits])
        return [{**f, "reason": reasons.get(int(f["movie_id"]), "matches your ratings")}
                for f in self.with_statistics(hits)]

    def _as_known_to(self, films_version: str, user: dict) -> dict:
        """``user`` as the model of ``films_version`` (``films-v<N>``) knows them. The ``users``
        alias moves with ``films`` when a version is indexed, while this worker may still serve the
        one before (a new version is loaded ahead), and the job may write a user under its model for
        a few seconds after the swap: a document of another model version (another vector space) is
        read again from that version's own ``users-v<N>``."""
        number = films_version.removeprefix(indices.versioned_name(queries.FILMS, ""))
        if str(user.get("model_version")) == number or "user_id" not in user:
            return user
        return queries.get_user(self.es, user["user_id"], index=indices.versioned_name(queries.USERS, number),
                                fields=queries.RECOMMENDING) or {k: v for k, v in user.items() if k != "vector"}

    def version(self, version: str) -> Catalogue:
        """The catalogue of ``version`` (a canary's challenger), the served one or the one other kept."""
        served = self.catalogue()
        if served.version == version:
            return served
        with self._lock:
            if self._other is None or self._other.version != version:
                self._other = Catalogue.load(self.es, version)
            return self._other
