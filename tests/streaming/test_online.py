"""Online metrics from feedback and ratings: counts per minute and variant, conversions,
rejections, drift against the training data; written to a real Elasticsearch."""

import numpy as np
import pandas as pd
import pytest

from cinerec.core.events import RatingEvent
from cinerec.core.feedback import click, impression
from cinerec.search.indices import ensure_event_indices
from cinerec.streaming.online import REJECT_AFTER_MS, OnlineMetrics, Reference, arms_since, psi

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000


def rating(user, movie, value, ts):
    return RatingEvent(f"00000000-0000-4000-8000-{user:06d}{movie:06d}", user, movie, value, ts, "simulator")


def test_counts_conversions_and_rejections_per_variant():
    online = OnlineMetrics(truth=lambda user, shown: (0.5, 0.2))
    online.feedback(impression("a", 1, "champion", [10, 11, 12], T0))
    online.feedback(impression("b", 2, "challenger", [10, 13], T0 + 1000))
    online.feedback(click("b", 2, "challenger", 13, 2, T0 + 2000))
    online.rating(rating(2, 13, 4.5, T0 + 3000))                  # clicked, then liked: a conversion
    online.rating(rating(1, 11, 5.0, T0 + 3000))                  # never clicked: not one
    online.expire(T0 + 1000 + REJECT_AFTER_MS)
    counts = {variant: dict(c) for (_, variant), c in online.pending.items()}
    assert counts["champion"] == {"lists": 1, "impressions": 3, "rejections": 1, "precision_sum": 0.5,
                                  "regret_sum": 0.2}
    assert counts["challenger"] == {"lists": 1, "impressions": 2, "clicks": 1, "conversions": 1,
                                    "precision_sum": 0.5, "regret_sum": 0.2}


def test_psi_is_zero_for_equal_distributions_and_grows_with_the_shift():
    base = np.array([10, 20, 30, 40.0])
    assert psi(base, base) == pytest.approx(0.0)
    assert 0 < psi(base, base[::-1] * 0.5 + base * 0.5) < psi(base, base[::-1])


def test_drift_compares_recent_ratings_with_the_training_data():
    train = pd.DataFrame({"user_id": [1, 2, 3] * 100, "movie_id": list(range(1, 101)) * 3,
                          "rating": [4.0, 4.5, 5.0] * 100})
    online = OnlineMetrics(reference=Reference.of(train), window=200)
    for i in range(200):
        online.rating(rating(1000 + i, 500 + i, 1.0, T0))          # new users, new films, low ratings
    online.flush()
    drift = online.drift()
    assert drift["psi_rating"] > 1 and drift["psi_popularity"] > 1


@pytest.mark.services
def test_counts_add_up_in_elasticsearch(services, base_settings):
    from cinerec.platform.elasticsearch import connect

    es = connect(base_settings.elasticsearch)
    ensure_event_indices(es)
    start = T0 + 7 * 86_400_000
    online = OnlineMetrics(es)
    for flush in range(2):                                          # two flushes add to the same minute
        online.feedback(impression(f"r{flush}", 1, "champion", [1, 2, 3, 4], start))
        online.feedback(click(f"r{flush}", 1, "champion", 2, 2, start))
        online.flush()
    arms = arms_since(es, start, until_ms=start)                   # other tests count minutes of today
    assert arms["champion"]["impressions"] == 8 and arms["champion"]["clicks"] == 2
    # a canary opened in the minute the previous one was decided does not inherit that minute's counts
    assert "champion" not in arms_since(es, start + 30_000, until_ms=start + 60_000, after_ms=start + 20_000)
    assert arms_since(es, start + 30_000, until_ms=start + 60_000, after_ms=start - 1)["champion"]["clicks"] == 2
    es.delete(index="online_metrics", id=f"{start}:champion", refresh=True)
