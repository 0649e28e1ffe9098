"""Metric functions against values computed by hand."""

import math

import pytest

from cinerec.core import metrics

# User 1: ranked [10, 20, 30, 40], relevant {20, 40, 50}.  User 2: ranked [5, 6], relevant {5}.
RANKED = {1: [10, 20, 30, 40], 2: [5, 6, 7, 8]}
RELEVANT = {1: {20, 40, 50}, 2: {5}}


def test_precision_at_k():
    # user 1: 2 hits / 4, user 2: 1 hit / 4
    assert metrics.precision_at_k(RANKED, RELEVANT, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)


def test_recall_at_k():
    assert metrics.recall_at_k(RANKED, RELEVANT, 4) == pytest.approx((2 / 3 + 1 / 1) / 2)


def test_ndcg_at_k():
    dcg1 = 1 / math.log2(3) + 1 / math.log2(5)            # hits at ranks 2 and 4
    idcg1 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(RANKED, RELEVANT, 4) == pytest.approx((dcg1 / idcg1 + 1.0) / 2)


def test_map_divides_by_the_number_of_relevant_items():
    ap1 = (1 / 2 + 2 / 4) / 3
    assert metrics.map_at_k(RANKED, RELEVANT, 4) == pytest.approx((ap1 + 1.0) / 2)


def test_cut_off_is_respected():
    assert metrics.precision_at_k(RANKED, RELEVANT, 1) == pytest.approx((0 + 1) / 2)
    assert metrics.ndcg_at_k({1: [20]}, {1: {20}}, 10) == pytest.approx(1.0)


def test_users_without_relevant_items_do_not_count():
    assert metrics.precision_at_k({1: [1], 2: [2]}, {1: {1}, 2: set()}, 1) == 1.0


def test_rmse_and_mae():
    assert metrics.rmse([3.0, 4.0], [4.0, 2.0]) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert metrics.mae([3.0, 4.0], [4.0, 2.0]) == pytest.approx(1.5)


def test_coverage_and_novelty():
    assert metrics.catalog_coverage({1: [1, 2], 2: [2, 3]}, 10, 2) == pytest.approx(0.3)
    assert metrics.novelty({1: [1, 2]}, {1: 0.5, 2: 0.25}, 2) == pytest.approx((1 + 2) / 2)
