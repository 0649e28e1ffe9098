"""The retraining pipeline, orchestrated by Dagster (in ``ops``: it drives batch, search and the
registry, as the commands do):

    extract ─▶ train ─▶ gate ─▶ canary

    extract  the champion's training data plus every rating the streaming job has indexed since
             (``ratings`` index: only events with consent to analytics; erased users left out;
             the latest rating per user and film wins), as a new ml-csv dataset under
             ``<data_dir>/datasets/retrain-<time>``; ``extract.json`` there records the latest
             rating time it holds (``until_ms``), where the next count of new data starts
    train    Spark preparation, the champion's model and hyper-parameters fit on it, held-out
             metrics, registration as ``challenger`` (``cinerec train``)
    gate     the challenger's held-out metric on its own split against the champion's
             hyper-parameters re-evaluated on the same split: no worse than ``GATE_TOLERANCE``
    canary   the challenger's own indices and a canary on ``CANARY_FRACTION`` of users
             (``cinerec canary start``); refused while another canary is open

Each step is an op with its own retry policy; the steps run one after the other in the run's
process and their outputs are kept in the instance's storage, so a failed run is re-executed
from its failed step (the UI's "Re-execute from failure", ``cinerec retrain --from-failure``).

What runs it, on the scheduler (``ops/scheduler.py``: Dagster's daemon on a persistent instance,
started by ``cinerec demo`` and ``cinerec scheduler``):
    daily           schedule ``ops.retrain_cron``
    new_data        sensor, every ``ops.new_data_check_s``: the ratings indexed since the last
                    extract (not erased) reach ``ops.new_data_share`` of the champion's data
    canary_decision sensor, every ``ops.canary_look_s`` while a canary is open: one look of
                    ``core.canary.decide`` — promote, abort (recorded with the model version) or wait
    an alert        Alertmanager's webhook (``POST /ops/alerts``) and ``cinerec retrain --now``
                    submit a run to the same instance
The schedule and the new_data sensor skip while a canary is open; the run queue holds one run at
a time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    RetryPolicy,
    RunRequest,
    SkipReason,
    in_process_executor,
    job,
    op,
    schedule,
    sensor,
)

from cinerec.core.dataset import latest_ratings
from cinerec.core.settings import Settings, load_settings

from .canary import start_canary

GATE_TOLERANCE = 0.02
CANARY_FRACTION = 0.2
RETRY = RetryPolicy(max_retries=2, delay=5)


def _settings() -> Settings:
    return load_settings()


def extract_dataset(settings: Settings) -> Path:
    """The champion's data plus the indexed ratings since, as a new ml-csv dataset; returns it."""
    from cinerec.batch import movielens
    from cinerec.platform.elasticsearch import connect
    from cinerec.platform.kafka import privacy_book
    from cinerec.platform.registry import CHAMPION, Registry

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
    until = int(max(ratings["ts"].max(), streamed["ts"].max() if len(streamed) else 0))
    (out / "extract.json").write_text(json.dumps({"base": version.tags["data_path"], "base_ratings": len(base.ratings),
                                                  "streamed": len(streamed), "ratings": len(ratings),
                                                  "until_ms": until}))
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


def new_data(settings: Settings) -> dict | None:
    """What the new_data trigger counts: ratings indexed after the last extract (of any retraining,
    promoted or not, or else the champion's own data), of users not erased, and their share of the
    champion's data; None without a champion. The ``ratings`` index holds only ratings with
    consent to analytics."""
    from cinerec.batch import movielens
    from cinerec.platform.elasticsearch import connect
    from cinerec.platform.kafka import privacy_book
    from cinerec.platform.registry import CHAMPION, Registry

    version = Registry(settings).version(CHAMPION)
    if version is None:
        return None
    base = movielens.load(Path(version.tags["data_path"])).ratings
    extracts = Path(settings.services.data_dir).glob("datasets/retrain-*/extract.json")
    since = max([int(base["ts"].max()) if len(base) else 0,
                 *(json.loads(path.read_text()).get("until_ms", 0) for path in extracts)])
    erased = privacy_book(settings.kafka, settings.web.first_user_id).erased()
    query = {"bool": {"filter": [{"range": {"ts": {"gt": since}}}],
                      "must_not": [{"terms": {"user_id": sorted(erased)}}] if erased else []}}
    new = connect(settings.elasticsearch).count(index="ratings", query=query, ignore_unavailable=True)["count"]
    return {"new": new, "since_ms": since, "champion_ratings": len(base), "share": new / max(len(base), 1)}


def open_canary(settings: Settings) -> dict | None:
    from cinerec.platform.elasticsearch import connect
    from cinerec.search import canary

    return canary.running(connect(settings.elasticsearch))


def train_challenger(settings: Settings, data: Path) -> dict:
    """The champion's model and hyper-parameters fit on the new data (``cinerec tune`` is where
    hyper-parameters change), registered as challenger."""
    from cinerec.batch.training import prepare, registered_name, train
    from cinerec.platform.kafka import privacy_book
    from cinerec.platform.registry import CHAMPION, Registry

    champion = Registry(settings).load(CHAMPION)
    frames, report = prepare(data, settings, privacy_book(settings.kafka, settings.web.first_user_id).untrainable())
    artifact, seconds = train(frames, report, model=champion.model, params=champion.params)
    registry = Registry(settings, registered_name(settings, artifact.model))
    return {**registry.register(artifact, data_path=str(data.resolve()), train_seconds=seconds),
            "heldout": artifact.metrics}


def gate(settings: Settings, trained: dict) -> dict:
    """Challenger vs champion on the challenger's split; raises ``GateRefused`` when worse."""
    from cinerec.batch.training import heldout_metrics, prepare
    from cinerec.platform.registry import CHALLENGER, CHAMPION, Registry

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
    settings = _settings()
    if (running := open_canary(settings)) is not None:
        raise Failure(f"canary v{running['version']} is still open (the canary_decision sensor decides it); "
                      "re-execute this run from this step once it is decided", allow_retries=False)
    started = start_canary(settings, CANARY_FRACTION)
    context.log.info(f"canary: {started}")
    return started


@job(tags={"pipeline": "retrain"}, executor_def=in_process_executor)
def retrain():
    canary_op(gate_op(train_op(extract())))


STARTUP = load_settings()          # what the scheduler's code server reads once: intervals, cron


@schedule(job=retrain, cron_schedule=STARTUP.ops.retrain_cron, default_status=DefaultScheduleStatus.RUNNING)
def daily(context):
    if (running := open_canary(_settings())) is not None:
        return SkipReason(f"canary v{running['version']} is open")
    return RunRequest(tags={"trigger": "daily"})


@sensor(name="new_data", job=retrain, minimum_interval_seconds=STARTUP.ops.new_data_check_s,
        default_status=DefaultSensorStatus.RUNNING)
def new_data_sensor(context):
    settings = _settings()
    counted = new_data(settings)
    if counted is None:
        return SkipReason("no champion yet")
    if (running := open_canary(settings)) is not None:
        return SkipReason(f"canary v{running['version']} is open")
    wanted = settings.ops.new_data_share
    if counted["share"] < wanted:
        return SkipReason(f"{counted['new']} ratings since the last extract = {counted['share']:.1%} of the "
                          f"champion's data (< {wanted:.0%})")
    return RunRequest(run_key=f"new-data-since-{counted['since_ms']}",       # one run per extract
                      tags={"trigger": "new_data", "share": f"{counted['share']:.3f}"})


@sensor(minimum_interval_seconds=STARTUP.ops.canary_look_s, default_status=DefaultSensorStatus.RUNNING)
def canary_decision(context):
    """One look at the open canary (``ops.canary.look``): promotes or aborts when the test says so."""
    from .canary import look

    settings = _settings()
    if open_canary(settings) is None:
        return SkipReason("no canary is open")
    report = look(settings, act=True)
    decision = report["decision"]
    context.log.info(json.dumps(report))
    return SkipReason(f"look {decision['look']}: {decision['action']} ({decision['reason']}); CTR champion "
                      f"{decision['champion_ctr']} vs challenger {decision['challenger_ctr']}")


defs = Definitions(jobs=[retrain], schedules=[daily], sensors=[new_data_sensor, canary_decision])
