"""The activity panels of ``/dashboard``: Elasticsearch aggregations (one ``msearch``) drawn as
server-rendered SVG. The same panels are Kibana saved objects in ``kibana/cinerec.ndjson``.

    ratings per minute        ratings: date_histogram(ts, 1m) over the newest hour of events
    rating distribution       ratings: terms(rating)
    average rating per genre  film_stats:   terms(genres) → weighted_avg(rating_mean by rating_count)
    best-rated films          film_stats:   top bayesian_avg
    ratings per user          users:   range(rating_count)
    active users per hour     ratings: date_histogram(ts, 1h) → cardinality(user_id), newest day
    trending films            film_stats:   top trending
    dead letters by reason    dead_letters: terms(reason)
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

HOUR_MS = 3_600_000
ACTIVITY = [(1, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, None)]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    labels: list[str]
    values: list[float]
    unit: str = ""

    def svg(self, width: int = 360, height: int = 200) -> str:
        return bar_chart(self.labels, self.values, width=width, height=height, unit=self.unit)


def panels(es) -> list[Panel]:
    newest = _newest_event_ms(es)
    searches = [
        ("ratings", {"size": 0, "query": {"range": {"ts": {"gt": newest - HOUR_MS}}},
                     "aggs": {"a": {"date_histogram": {"field": "ts", "fixed_interval": "1m", "min_doc_count": 0,
                                                       "extended_bounds": {"min": newest - HOUR_MS + 60_000,
                                                                           "max": newest}}}}}),
        ("ratings", {"size": 0, "aggs": {"a": {"terms": {"field": "rating", "size": 10, "order": {"_key": "asc"}}}}}),
        ("film_stats", {"size": 0, "query": {"range": {"rating_count": {"gte": 1}}},
                   "aggs": {"a": {"terms": {"field": "genres", "size": 12},
                                  "aggs": {"avg": {"weighted_avg": {"value": {"field": "rating_mean"},
                                                                    "weight": {"field": "rating_count"}}}}}}}),
        ("film_stats", {"size": 10, "_source": ["title", "bayesian_avg"],
                        "query": {"range": {"rating_count": {"gte": 1}}}, "sort": [{"bayesian_avg": "desc"}]}),
        ("users", {"size": 0, "aggs": {"a": {"range": {"field": "rating_count", "ranges": [
            {"from": low, **({"to": high} if high else {})} for low, high in ACTIVITY]}}}}),
        ("ratings", {"size": 0, "query": {"range": {"ts": {"gt": newest - 24 * HOUR_MS}}},
                     "aggs": {"a": {"date_histogram": {"field": "ts", "fixed_interval": "1h", "min_doc_count": 0},
                                    "aggs": {"users": {"cardinality": {"field": "user_id"}}}}}}),
        ("film_stats", {"size": 10, "_source": ["title", "trending"], "query": {"range": {"trending": {"gt": 0}}},
                        "sort": [{"trending": "desc"}]}),
        ("dead_letters", {"size": 0, "aggs": {"a": {"terms": {"field": "reason", "size": 12}}}}),
    ]
    body = []
    for index, search in searches:
        body += [{"index": index, "ignore_unavailable": True}, search]
    r = es.msearch(searches=body)["responses"]
    agg = lambda i: r[i].get("aggregations", {}).get("a", {}).get("buckets", [])  # noqa: E731
    hits = lambda i: [h["_source"] for h in r[i].get("hits", {}).get("hits", [])]  # noqa: E731
    return [
        Panel("ratings_per_minute", "Ratings per minute (newest hour of events)",
              [_clock(b["key"]) for b in agg(0)], [b["doc_count"] for b in agg(0)]),
        Panel("rating_distribution", "Rating distribution", [f"{b['key']:g}" for b in agg(1)],
              [b["doc_count"] for b in agg(1)]),
        Panel("average_by_genre", "Average rating per genre", [b["key"] for b in agg(2)],
              [round(b["avg"]["value"] or 0, 2) for b in agg(2)], "★"),
        Panel("best_films", "Best-rated films (Bayesian average)", [f["title"] for f in hits(3)],
              [round(f.get("bayesian_avg") or 0, 2) for f in hits(3)], "★"),
        Panel("ratings_per_user", "Users by number of ratings", [b["key"].replace(".0", "") for b in agg(4)],
              [b["doc_count"] for b in agg(4)]),
        Panel("active_users_per_hour", "Active users per hour (newest day of events)",
              [_clock(b["key"]) for b in agg(5)], [b["users"]["value"] for b in agg(5)]),
        Panel("trending", "Trending films (ratings in the trending window)", [f["title"] for f in hits(6)],
              [f.get("trending") or 0 for f in hits(6)]),
        Panel("dead_letters", "Dead letters by reason", [b["key"] for b in agg(7)], [b["doc_count"] for b in agg(7)]),
    ]


def _newest_event_ms(es) -> int:
    """The newest event time, or now if that is later (valid events may be up to a day ahead)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    found = es.search(index="ratings", size=0, aggs={"newest": {"max": {"field": "ts"}}}, ignore_unavailable=True)
    value = found.get("aggregations", {}).get("newest", {}).get("value")
    return min(int(value), now) if value else now


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")


def bar_chart(labels: list[str], values: list[float], *, width: int, height: int, unit: str = "") -> str:
    """Vertical bars with a label under every few; an empty chart says so."""
    if not values or not any(values):
        return (f'<svg viewBox="0 0 {width} {height}" role="img" class="chart empty"><text x="{width / 2}" '
                f'y="{height / 2}" text-anchor="middle">no data yet</text></svg>')
    top, n = max(values) or 1, len(values)
    left, bottom, gap = 34, 40, 2
    slot = (width - left) / n
    every = max(1, n // 8)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart" data-bars="{n}">',
             f'<text x="2" y="12" class="axis">{_number(top)}{html.escape(unit)}</text>']
    for i, (label, value) in enumerate(zip(labels, values)):
        h = (height - bottom - 16) * (value / top)
        x, y = left + i * slot, height - bottom - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - gap, 1):.1f}" height="{h:.1f}">'
                     f'<title>{html.escape(str(label))}: {_number(value)}{html.escape(unit)}</title></rect>')
        if i % every == 0:
            short = html.escape(str(label)[:14])
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 12}" class="label" '
                         f'transform="rotate(35 {x + slot / 2:.1f} {height - bottom + 12})">{short}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or float(value).is_integer() else f"{value:.2f}"
