"""Whatever model is the champion is what people get: for each servable model, the API's answer
for a user is the offline model's top-k for that user.

Each model is fit on the planted data, made servable as ``cinerec train`` makes it
(``batch.training.serving``) with stored lists as long as the catalogue (no truncation: the
figure for a truncated list is the replay benchmark's), indexed as ``cinerec index`` does and
asked through the API's route. Ties in the offline scores may come in either order.
"""

import numpy as np
import pytest
from planted import indexable_frames

from cinerec.api.app import create_app
from cinerec.batch.indexing import build_indices
from cinerec.batch.interactions import Interactions, item_metadata
from cinerec.batch.recommenders import create
from cinerec.batch.training import servable_artifact, serving

pytestmark = pytest.mark.services

SERVABLE = {
    "als": {"rank": 8, "iterations": 8, "regularization": 0.05, "alpha": 2.0},
    "ease": {"regularization": 50.0},
    "ease-session": {"regularization": 50.0},
    "itemknn-cosine": {"neighbours": 20},
    "rp3beta": {},
    "content": {},
    "item2vec": {"dim": 16, "epochs": 20, "neighbours": 20},
    "hybrid": {"components": {"ease-session": 0.4, "als": 0.4, "content": 0.15, "item2vec": 0.05},
               "part_params": {"als": {"rank": 16}, "item2vec": {"dim": 16, "epochs": 20}}},
}
K, USERS = 5, (1, 17, 44, 80)


@pytest.fixture(scope="module")
def world(fresh_indices, base_settings):
    frames = indexable_frames()
    ratings = frames["ratings"]
    users, items = np.sort(ratings["user_id"].unique()), np.sort(ratings["movie_id"].unique())
    full = Interactions.build(ratings, users, items, item_metadata(frames["movies"], frames["tags"], items))
    app = create_app(base_settings.replace(api__alias_check_s=0.0))
    app.testing = True
    return frames, full, app.test_client()


@pytest.mark.parametrize("name", list(SERVABLE))
def test_the_api_answers_with_the_offline_models_top_k(world, fresh_indices, name):
    frames, full, client = world
    model = create(name, SERVABLE[name]).fit(full)
    artifact = servable_artifact(model, "planted", neighbours_kept=len(full.item_ids))
    version = f"{list(SERVABLE).index(name) + 20}"
    build_indices(fresh_indices, frames, artifact, version=version)
    with client.application.app_context():                 # the new version loaded ahead, then served
        assert client.application.extensions["cinerec"].films.settled().version == f"films-v{version}"
    rows = full.user_index(list(USERS))
    offline_top = model.recommend(rows, K)
    offline_scores = np.asarray(model.score(rows), dtype=np.float64)
    for user, row, top in zip(USERS, rows, offline_top):
        body = client.get(f"/users/{user}/recommendations?k={K}").get_json()
        served = [r["movie_id"] for r in body["results"]]
        served_scores = offline_scores[list(rows).index(row), full.item_index(served)]
        expected_scores = offline_scores[list(rows).index(row), top]
        assert np.allclose(served_scores, expected_scores, rtol=1e-6, atol=1e-9), (name, user, served,
                                                                                   list(full.item_ids[top]))
        if len(set(np.round(expected_scores, 9))) == K:              # no ties: the very same list
            assert served == [int(m) for m in full.item_ids[top]]
        assert all(r["reason"].startswith("because you liked ") for r in body["results"])


def test_a_model_the_api_cannot_rank_is_refused_at_training(world):
    _, full, _ = world
    with pytest.raises(ValueError, match="cannot be served"):
        serving(create("popular").fit(full), full, neighbours_kept=10)
