"""The API's test world: planted films and users indexed in the real Elasticsearch."""

import numpy as np
import pytest
from planted import indexable_frames

from cinerec.batch.indexing import build_indices
from cinerec.batch.interactions import Interactions
from cinerec.batch.recommenders import create
from cinerec.core.artifact import ModelArtifact


@pytest.fixture(scope="module")
def indexed(fresh_indices, base_settings):
    frames = indexable_frames()
    movies, ratings = frames["movies"], frames["ratings"]
    movies.loc[movies["movie_id"] == 1, ["title", "year"]] = ("Toy Story", 1995)
    movies.loc[movies["movie_id"] == 26, ["title", "year"]] = ("Heat", 1995)
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    model = create("als", {"rank": 8, "iterations": 8, "regularization": 0.05, "alpha": 2.0})
    model.fit(Interactions.build(ratings, users, items))
    artifact = ModelArtifact("als", model.params, users, items, model.user_factors, model.item_factors)
    build_indices(fresh_indices, frames, artifact, version=7)
    return frames
