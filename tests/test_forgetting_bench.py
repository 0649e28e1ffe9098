"""`cinerec bench forgetting` on a small world: after a taste reversal, a model that forgets wins
its users' clicks back; one that does not stays below (the loop demo's story, offline)."""

from cinerec.core.settings import load_settings
from cinerec.ops.forgetting import drift_recovery


def test_forgetting_wins_the_users_back_after_a_taste_reversal():
    settings = load_settings(env={"CINEREC_SIMULATOR__USERS": "200", "CINEREC_SIMULATOR__MOVIES": "400",
                                  "CINEREC_SIMULATOR__MEAN_RATINGS_PER_USER": "30"})
    report = drift_recovery(settings, half_lives_s=[0, 60], users=120, rank=16, minutes=4, feed_rate=20)
    off, forgets = report["half_lives"]["off"], report["half_lives"]["60s"]
    assert report["ratings_per_minute"] == 6 and len(off["ctr_minutes_after"]) == 4
    assert off["ctr_minutes_after"][-1] < 0.9 * off["ctr_before"]           # the reversal costs clicks
    assert forgets["ctr_minutes_after"][-1] > off["ctr_minutes_after"][-1] + 0.02
    assert forgets["ctr_minutes_after"][-1] >= 0.9 * forgets["ctr_before"]   # and forgetting wins them back
