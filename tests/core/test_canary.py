"""Canary assignment and the decision rule."""

import numpy as np

from cinerec.core.canary import ALPHA, MAX_LOOKS, MIN_IMPRESSIONS, Arm, decide, in_canary, two_proportion_z


def test_assignment_is_stable_and_close_to_the_fraction():
    users = range(1, 20_001)
    drawn = [u for u in users if in_canary(u, 0.1, "salt-1")]
    assert abs(len(drawn) / 20_000 - 0.1) < 0.01
    assert drawn == [u for u in users if in_canary(u, 0.1, "salt-1")]          # stable
    assert drawn != [u for u in users if in_canary(u, 0.1, "salt-2")]          # each canary draws its own
    assert not any(in_canary(u, 0.0, "s") for u in users) and all(in_canary(u, 1.0, "s") for u in users)


def test_a_clearly_better_challenger_is_promoted_a_worse_one_aborted():
    champion = Arm(impressions=5000, clicks=500)
    assert decide(champion, Arm(5000, 650), look=1).action == "promote"
    assert decide(champion, Arm(5000, 380), look=1).action == "abort"
    assert decide(champion, Arm(5000, 510), look=1).action == "wait"
    assert decide(champion, Arm(5000, 510), look=MAX_LOOKS).action == "abort"
    assert decide(Arm(MIN_IMPRESSIONS - 1, 10), Arm(MIN_IMPRESSIONS - 1, 190), look=1).action == "wait"


def test_an_error_rate_rise_aborts_at_once():
    assert decide(Arm(1000, 100, requests=100, errors=0), Arm(1000, 200, requests=100, errors=5), 1).action == "abort"


def test_equal_variants_are_promoted_no_more_often_than_the_stated_error_rate():
    rng = np.random.default_rng(7)
    wrong = 0
    for _ in range(400):
        clicks_a, clicks_b = 0, 0
        for look in range(1, MAX_LOOKS + 1):
            clicks_a += rng.binomial(500, 0.1)
            clicks_b += rng.binomial(500, 0.1)
            action = decide(Arm(500 * look, clicks_a), Arm(500 * look, clicks_b), look).action
            if action != "wait":
                wrong += action == "promote"
                break
    assert wrong / 400 <= ALPHA


def test_z_is_the_pooled_two_proportion_statistic():
    assert abs(two_proportion_z(Arm(1000, 100), Arm(1000, 130)) - 2.1035) < 1e-3
