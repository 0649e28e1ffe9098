"""The retraining pipeline, orchestrated by Dagster (in ``ops``: it drives batch, search and the
registry, as the commands do):

    extract ─▶ train ─▶ gate ─▶ canary

    extract  the champion's training data plus every rating the streaming job has indexed since
             (``ratings`` index: only events with consent to analytics; erased users left out;
             the latest rating per user and film wins), as a new ml-csv dataset under
             ``<data_dir>/datasets/retrain-<time>``
    train    Spark preparation, the champion's model and hyper-parameters fit on it, held-out
             metrics, registration as ``challenger`` (``cinerec train``)
    gate     the challenger's held-out metric on its own split against the champion's
             hyper-parameters re-evaluated on the same split: no worse than ``GATE_TOLERANCE``
    canary   the challenger's own indices and a canary on ``CANARY_FRACTION`` of users
             (``cinerec canary start``); ``cinerec canary decide`` judges it on online metrics

Each step is an op with its own retry policy; Dagster re-executes a failed run from the failed
step. Triggers: a daily schedule; a sensor when the ratings indexed since the champion's data
reach ``NEW_DATA_SHARE`` (20 %) of it; an alert (the API's ``POST /ops/alerts``, Alertmanager's
webhook, for the drift and online-precision alerts) or ``cinerec retrain --now``, both of which
run the job in process. The UI: ``dagster dev -m ops.pipeline`` (needs ``dagster-webserver``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from dagster import Definitions, RetryPolicy, RunRequest, ScheduleDefinition, SkipReason, job, op, sensor

from .canary import start_canary
from core.dataset import latest_ratings
from core.settings import Settings, load_settings

GATE_TOLERANCE = 0.02
CANARY_FRACTION = 0.2
NEW_DATA_SHARE = 0.2
RETRY = RetryPolicy(max_retries=2, delay=5)


def _settings() -> Settings:
    return load_settings()


def extract_dataset(settings: Settings) -> Path:
    """The champion's data plus the indexed ratings since, as a new ml-csv dataset; returns it."""
    from batch import movielens
    from batch.registry import CHAMPION, Registry
    from core.privacy import privacy_book
    from search.client import connect

    version = Registry(settings).version(CHAMPION)
    if version is None:
        raise LookupError("no champion to retrain: run `cinerec train` and `cinerec promote`")
    base = movielens.load(Path(version.tags["data_path"]))
    streamed = indexed_ratings(connect(settings.elasticsearch))
    erased = privacy_book(settings.kafka, settings.web.first_user_id).erased()
    ratings = pd.concat([base.ratings, streamed], ignore_index=True)
    ratings = latest_ratings(ratings[~ratings["user_id"].isin(erased)])
    out = Path(settings.services.data_dir) / "datasets" / f"retrain-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    ratings.rename(columns={"user_id": "userId", "movie_id": "movieId"}).assign(
        timestamp=lambda f: f["ts"] // 1000)[["userId", "movieId", "rating", "timestamp"]].to_csv(
        out / "ratings.csv", index=False)
    movies = base.movies.assign(title=lambda f: f.apply(
        lambda r: f"{r['title']} ({int(r['year'])})" if pd.notna(r["year"]) else r["title"], axis=1),
        genres=lambda f: f["genres"].map(lambda g: "|".join(g) if len(g) else "(no genres listed)"))
    movies.rename(columns={"movie_id": "movieId"})[["movieId", "title", "genres"]].to_csv(out / "movies.csv",
                                                                                        index=False)
    tags = base.tags.rename(columns={"user_id": "userId", "movie_id": "movieId"})
    if len(tags):
        tags = tags[~tags["userId"].isin(erased)].assign(timestamp=lambda f: f["ts"] // 1000)
    pd.DataFrame(tags, columns=["userId", "movieId", "tag", "timestamp"]).to_csv(out / "tags.csv", index=False)
    (out / "extract.json").write_text(json.dumps({"base": version.tags["data_path"], "base_ratings": len(base.ratings),
                                                  "streamed": len(streamed), "ratings": len(ratings)}))
    return out


def indexed_ratings(es, page: int = 10_000) -> pd.DataFrame:
    """Every rating event in the ``ratings`` index (user_id, movie_id, rating, ts)."""
    rows, after = [], None
    while True:
        found = es.search(index="ratings", size=page, sort=[{"ts": "asc"}, {"event_id": "asc"}],
                          source=["user_id", "movie_id", "rating", "ts"], search_after=after,
                          ignore_unavailable=True)["hits"]["hits"]
        if not found:
            break
        rows += [h["_source"] for h in found]
        after = found[-1]["sort"]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"])


def new_data_share(settings: Settings) -> float:
    """Ratings indexed since the champion's training data, as a share of it."""
    from batch.registry import CHAMPION, Registry
    from search.client import connect

    version = Registry(settings).version(CHAMPION)
    if version is None:
        return 0.0
    trained = _count_ratings(version.tags["data_path"])
    indexed = connect(settings.elasticsearch).count(index="ratings", ignore_unavailable=True)["count"]
    return indexed / max(trained, 1)


def _count_ratings(data_path: str) -> int:
    from batch import movielens

    return len(movielens.load(Path(data_path)).ratings)


def train_challenger(settings: Settings, data: Path) -> dict:
    """The champion's model and hyper-parameters fit on the new data (``cinerec tune`` is where
    hyper-parameters change), registered as challenger."""
    from batch.registry import CHAMPION, Registry, registered_name
    from batch.training import prepare, train
    from core.privacy import privacy_book

    champion = Registry(settings).load(CHAMPION)
    frames, report = prepare(data, settings, privacy_book(settings.kafka, settings.web.first_user_id).untrainable())
    artifact, seconds = train(frames, report, model=champion.model, params=champion.params)
    registry = Registry(settings, registered_name(settings, artifact.model))
    return {**registry.register(artifact, data_path=str(data.resolve()), train_seconds=seconds),
            "heldout": artifact.metrics}


def gate(settings: Settings, trained: dict) -> dict:
    """Challenger vs champion on the challenger's split; raises ``GateRefused`` when worse."""
    from batch.registry import CHALLENGER, CHAMPION, Registry
    from batch.training import heldout_metrics, prepare

    registry = Registry(settings)
    metric = settings.mlflow.promotion_metric
    challenger = registry.version(CHALLENGER)
    frames, _ = prepare(Path(challenger.tags["data_path"]), settings)
    current = registry.load(CHAMPION)
    champion_value = heldout_metrics(frames, model=current.model, params=current.params)[metric]
    value = json.loads(challenger.tags["metrics"])[metric]
    verdict = {"metric": metric, "challenger": value, "champion_on_same_split": champion_value,
               "tolerance": GATE_TOLERANCE, "passed": value >= champion_value - GATE_TOLERANCE}
    registry.client.set_model_version_tag(registry.name, challenger.version, "gate", json.dumps(verdict))
    if not verdict["passed"]:
        raise GateRefused(f"challenger v{challenger.version} {metric}={value:.4f} is worse than the champion's "
                          f"{champion_value:.4f} by more than {GATE_TOLERANCE}")
    return verdict


class GateRefused(Exception):
    """The challenger is not good enough to be tried on people."""


# -- Dagster --------------------------------------------------------------------------------------

@op(retry_policy=RETRY)
def extract(context) -> str:
    path = extract_dataset(_settings())
    context.log.info(f"dataset {path}: {(path / 'extract.json').read_text()}")
    return str(path)


@op(retry_policy=RETRY)
def train_op(context, data: str) -> dict:
    trained = train_challenger(_settings(), Path(data))
    context.log.info(f"challenger v{trained['version']}: {trained['heldout']}")
    return trained


@op
def gate_op(context, trained: dict) -> dict:
    verdict = gate(_settings(), trained)
    context.log.info(f"gate: {verdict}")
    return verdict


@op(retry_policy=RETRY)
def canary_op(context, verdict: dict) -> dict:
    started = start_canary(_settings(), CANARY_FRACTION)
    context.log.info(f"canary: {started}")
    return started


@job(tags={"pipeline": "retrain"})
def retrain():
    canary_op(gate_op(train_op(extract())))


daily = ScheduleDefinition(job=retrain, cron_schedule="0 3 * * *")


@sensor(job=retrain, minimum_interval_seconds=300)
def new_data(context):
    share = new_data_share(_settings())
    if share < NEW_DATA_SHARE:
        return SkipReason(f"{share:.1%} new ratings since the champion's data (< {NEW_DATA_SHARE:.0%})")
    return RunRequest(run_key=f"new-data-{int(time.time() // 3600)}", tags={"trigger": "new_data",
                                                                         "share": f"{share:.3f}"})


defs = Definitions(jobs=[retrain], schedules=[daily], sensors=[new_data])


def run_now(reason: str = "manual") -> dict:
    """Runs the pipeline once in this process; the run's outcome per step."""
    result = retrain.execute_in_process(tags={"trigger": reason}, raise_on_error=False)
    steps = {event.step_key: event.event_type_value for event in result.all_events
             if event.step_key and event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")}
    output = result.output_for_node("canary_op") if result.success else None
    return {"success": result.success, "run_id": result.run_id, "trigger": reason, "steps": steps, "canary": output}
