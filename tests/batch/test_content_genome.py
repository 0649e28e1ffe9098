"""The content model with the Tag Genome: relevance vectors join the TF-IDF features."""

import numpy as np
import pandas as pd
import pytest
from planted import planted_frames

from cinerec.batch.evaluate import Holdout
from cinerec.batch.interactions import Interactions, item_metadata
from cinerec.batch.movielens import load
from cinerec.batch.recommenders import create
from cinerec.batch.recommenders.content import item_tokens, tfidf

from movielens_fixtures import GENOME, write

TAGS = 8


def planted_genome(films, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([(film, tag, float(rng.uniform())) for film in films for tag in range(1, TAGS + 1)],
                        columns=["movie_id", "tag_id", "relevance"])


def frames_with_genome() -> dict:
    frames = planted_frames()
    return {**frames, "genome": planted_genome(range(1, 51))}   # films 51-60 have no genome


def test_item_metadata_carries_each_films_relevance_vector_in_tag_order(tmp_path):
    data = load(write("ml-csv", tmp_path, genome=True))
    items = np.array([1, 5, 6])
    meta = item_metadata(data.movies, data.tags, items, data.genome.sample(frac=1.0, random_state=0))
    np.testing.assert_array_equal(meta["genome"].iloc[0], GENOME[1])
    np.testing.assert_array_equal(meta["genome"].iloc[1], GENOME[5])
    assert meta["genome"].iloc[2] is None                         # film 6: not in the genome
    assert "genome" not in item_metadata(data.movies, data.tags, items)
    assert "genome" not in item_metadata(data.movies, data.tags, items, data.genome.iloc[:0])


def planted_case(weight: float):
    """User 1 loved films 1 and 2 (Sci-Fi, genome: mostly tags 1-2). Films 3 and 4 are alike in
    everything TF-IDF sees (Drama, same decade, no tags); film 3's genome is close to 1 and 2's,
    film 4's is not. User 2 rated 3 and 4 so that they are in the catalogue of ratings."""
    movies = pd.DataFrame({"movie_id": [1, 2, 3, 4], "title": list("ABCD"),
                           "year": pd.array([1990, 1991, 2005, 2006], dtype="Int64"),
                           "genres": [["Sci-Fi"], ["Sci-Fi"], ["Drama"], ["Drama"]]})
    ratings = pd.DataFrame({"user_id": [1, 1, 2, 2], "movie_id": [1, 2, 3, 4], "rating": [5.0, 5.0, 3.0, 3.0],
                            "ts": [1, 2, 3, 4]})
    vectors = {1: [0.9, 0.8, 0.1, 0.05], 2: [0.95, 0.7, 0.05, 0.1], 3: [0.85, 0.75, 0.1, 0.1],
               4: [0.05, 0.1, 0.9, 0.95]}
    genome = pd.DataFrame([(m, t + 1, r) for m, v in vectors.items() for t, r in enumerate(v)],
                          columns=["movie_id", "tag_id", "relevance"])
    tags = pd.DataFrame(columns=["user_id", "movie_id", "tag", "ts"])
    items = np.array([1, 2, 3, 4])
    train = Interactions.build(ratings, np.array([1, 2]), items, item_metadata(movies, tags, items, genome))
    return create("content", {"genome_weight": weight}).fit(train)


def test_with_the_genome_a_film_close_to_the_liked_ones_ranks_above_one_that_is_not():
    scores = planted_case(1.0).score(np.array([0]))[0]
    assert scores[2] > scores[3] + 0.1
    assert planted_case(1.0).recommend(np.array([0]), 1)[0, 0] == 2        # film 3
    blind = planted_case(0.0).score(np.array([0]))[0]
    assert blind[2] == pytest.approx(blind[3])                              # TF-IDF alone cannot tell


def test_genome_weight_zero_is_todays_content_model_exactly():
    with_genome, without = Holdout.build(frames_with_genome(), "stratified"), Holdout.build(planted_frames(),
                                                                                            "stratified")
    assert "genome" in with_genome.train.items and "genome" not in without.train.items
    zero = create("content", {"genome_weight": 0.0}).fit(with_genome.train)
    today = create("content").fit(without.train)              # no genome in the data: TF-IDF only
    meta = without.train.items
    docs = [item_tokens(g, t, y) for g, t, y in zip(meta["genres"], meta["tags"], meta["year"])]
    assert (zero.vectors != tfidf(docs)).nnz == 0 and (today.vectors != tfidf(docs)).nnz == 0
    users = with_genome.test_users
    np.testing.assert_array_equal(zero.score(users), today.score(users))
    np.testing.assert_array_equal(zero.recommend(users, 10), today.recommend(users, 10))
    np.testing.assert_array_equal(zero.weight_rows(np.arange(5)), today.weight_rows(np.arange(5)))


def test_genome_features_are_appended_and_rows_renormalised_films_without_keep_tfidf():
    holdout = Holdout.build(frames_with_genome(), "stratified")
    model = create("content", {"genome_weight": 2.0}).fit(holdout.train)
    plain = create("content", {"genome_weight": 0.0}).fit(holdout.train).vectors
    vectors = model.vectors.toarray()
    assert vectors.shape == (plain.shape[0], plain.shape[1] + TAGS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
    covered = np.array([g is not None for g in holdout.train.items["genome"]])
    assert covered.sum() == 50 and not covered.all()
    np.testing.assert_array_equal(vectors[~covered, :plain.shape[1]], plain.toarray()[~covered])
    assert not vectors[~covered, plain.shape[1]:].any()
    # a covered film: the genome half is twice as long as the TF-IDF half
    row = vectors[np.flatnonzero(covered)[0]]
    assert np.linalg.norm(row[plain.shape[1]:]) == pytest.approx(2 * np.linalg.norm(row[:plain.shape[1]]))


def test_the_toml_default_uses_the_genome_and_the_hybrid_gets_it_through_its_content_part():
    holdout = Holdout.build(frames_with_genome(), "stratified")
    assert create("content").params["genome_weight"] > 0
    hybrid = create("hybrid", {"components": {"popular": 0.5, "content": 0.5}}).fit(holdout.train)
    content = dict((m.name, m) for _, m in hybrid.parts)["content"]
    plain = create("content", {"genome_weight": 0.0}).fit(holdout.train).vectors
    assert content.vectors.shape[1] == plain.shape[1] + TAGS
