"""Commands on models: `cinerec train`, `evaluate`, `tune`, `promote`, `index`, `rollback`, `report`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cinerec.batch import report as html_report
from cinerec.batch.evaluate import evaluate
from cinerec.batch.recommenders import MODELS
from cinerec.batch.training import heldout_metrics, prepare, registered_name, train, tune
from cinerec.core.settings import Settings
from cinerec.ops.indexing import build_served_indices
from cinerec.platform.kafka import privacy_book
from cinerec.platform.registry import CHALLENGER, CHAMPION, Registry
from cinerec.simulator.world import world_dir, world_of

from ._output import print_json

DEFAULT_MODELS = ("popular", "itemknn-cosine", "itemknn-pearson", "rp3beta", "content", "ease", "ease-session",
                  "als", "als-explicit", "item2vec", "mult-vae", "hybrid")


def data_path(settings: Settings, path: Path | None) -> Path:
    """--data PATH, or the synthetic world (generated from settings the first time)."""
    if path is not None:
        return Path(path)
    directory = world_dir(settings)
    if not (directory / "ratings.csv").is_file():
        world_of(settings).save(directory)
    return directory


def parse_params(pairs: list[str] | None) -> dict:
    """``--param key=value`` pairs; values are parsed as JSON where they can be."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--param takes key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def privacy(settings: Settings):
    """The privacy book (``core.privacy``): whom training leaves out."""
    return privacy_book(settings.kafka, settings.web.first_user_id)


def train_command(settings: Settings, args: argparse.Namespace) -> int:
    path = data_path(settings, args.data)
    frames, report = prepare(path, settings, privacy(settings).untrainable())
    artifact, seconds = train(frames, report, model=args.model, params=parse_params(args.param),
                              config=args.config_file, k=args.k)
    registry = Registry(settings, registered_name(settings, artifact.model))
    registered = registry.register(artifact, data_path=str(path.resolve()), train_seconds=seconds)
    print_json({**registered, "model_name": artifact.model, "params": artifact.params,
                "heldout": artifact.metrics, "full_fit_seconds": round(seconds, 3),
                "fingerprint": artifact.fingerprint, "dropped_in_cleaning": report["dropped"]})
    return 0


def evaluate_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.streaming and args.protocol != "temporal":
        raise ValueError("--streaming replays the later ratings in time order; use it with --protocol temporal")
    if args.param and not args.streaming:
        raise ValueError("--param sets the hyper-parameters of the one model --streaming evaluates; "
                         "other comparisons use each model's TOML")
    frames, _ = prepare(data_path(settings, args.data), settings)
    if args.streaming:
        from cinerec.ops.streaming_quality import evaluate_streaming

        print_json(evaluate_streaming(frames, k=args.k, model=args.models or "als", params=parse_params(args.param)))
        return 0
    result = evaluate(frames, protocol=args.protocol, k=args.k, models=_models(args.models),
                      progress=lambda name, r: print(f"{name}: ndcg@{args.k}={r['ndcg']:.4f} "
                                                     f"({r['train_seconds']:.1f}s)", file=sys.stderr))
    for model in result["models"].values():
        model.pop("curve")
    print_json(result)
    return 0


def tune_command(settings: Settings, args: argparse.Namespace) -> int:
    frames, report = prepare(data_path(settings, args.data), settings)
    registry = Registry(settings)
    parent = registry.log_trial(f"tune-{args.model}", {"model": args.model}, {},
                                {"fingerprint": report["fingerprint"]})

    def log(point, metrics):
        registry.log_trial(f"trial-{args.model}", point, metrics, parent_run_id=parent)
        folds = " ".join(f"{v:.4f}" for v in metrics.get(f"{args.metric}_per_fold", []))
        print(f"{point}: {args.metric}={metrics[args.metric]:.4f} (folds {folds})", file=sys.stderr)
    result = tune(frames, model=args.model, config=args.config_file, k=args.k, trials=args.trials,
                  metric=args.metric, folds=args.folds, on_trial=log)
    print_json({**result, "mlflow_parent_run": parent})
    return 0


def promote_command(settings: Settings, args: argparse.Namespace) -> int:
    registry = Registry(settings, args.registered_model or "")
    champion, challenger = registry.version(CHAMPION), registry.version(CHALLENGER)
    champion_metrics = None
    if champion and challenger and champion.tags.get("split") != challenger.tags.get("split"):
        # Same held-out data for both: re-evaluate the champion's hyper-parameters on the
        # challenger's data and split.
        frames, _ = prepare(Path(challenger.tags["data_path"]), settings, privacy(settings).untrainable())
        current = registry.load(CHAMPION)
        champion_metrics = heldout_metrics(frames, model=current.model, params=current.params)
    print_json(registry.promote(metric=args.metric, margin=args.margin, champion_metrics=champion_metrics))
    return 0


def index_command(settings: Settings, args: argparse.Namespace) -> int:
    """The champion (or --alias) and its training data into versioned films/users indices."""
    print_json(build_served_indices(settings, args.alias))
    return 0


def rollback_command(settings: Settings, args: argparse.Namespace) -> int:
    print_json(Registry(settings, args.registered_model or "").rollback())
    return 0


def report_command(settings: Settings, args: argparse.Namespace) -> int:
    path = data_path(settings, args.data)
    frames, report = prepare(path, settings)
    result = evaluate(frames, protocol=args.protocol, k=args.k, models=_models(args.models),
                      progress=lambda name, r: print(f"{name}: done", file=sys.stderr))
    out = args.out or Path(settings.services.data_dir) / "reports" / f"{report['fingerprint']}.html"
    html_report.write(result, out, title="Cinerec: comparing recommenders",
                      data_summary={"path": str(path), "layout": report["layout"],
                                    "ratings": report["rows"]["clean"], "fingerprint": report["fingerprint"]})
    print_json({"report": str(out), "models": {n: round(r["ndcg"], 4) for n, r in result["models"].items()}})
    return 0


def _models(names: str | None) -> list[str]:
    chosen = [n.strip() for n in names.split(",")] if names else list(DEFAULT_MODELS)
    unknown = [n for n in chosen if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return chosen


def add_parsers(sub) -> None:
    def data_option(p):
        p.add_argument("--data", type=Path, help="MovieLens directory (default: the synthetic world)")
        p.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics (default 10)")

    train_p = sub.add_parser("train", help="train a model, log it to MLflow, register a challenger")
    data_option(train_p)
    train_p.add_argument("--model", default="als", choices=sorted(MODELS),
                         help="any model the API can rank (factor, item-item, or a hybrid of them) or als-explicit "
                              "(a rating predictor, registered beside the served model); default als")
    train_p.add_argument("--config", dest="config_file", type=Path,
                         help="model TOML (default config/models/<model>.toml)")
    train_p.add_argument("--param", action="append", metavar="KEY=VALUE",
                         help="override a hyper-parameter, e.g. --param trainer=spark")
    train_p.set_defaults(run=train_command)

    eval_p = sub.add_parser("evaluate", help="compare recommenders on the evaluation protocol (JSON)")
    data_option(eval_p)
    eval_p.add_argument("--protocol", choices=("stratified", "temporal"), default="stratified")
    eval_p.add_argument("--models", help=f"comma-separated (default: {','.join(DEFAULT_MODELS)})")
    eval_p.add_argument("--json", action="store_true", help="JSON output (the only format; accepted for scripts)")
    eval_p.add_argument("--streaming", action="store_true",
                        help="temporal only: train on the first 80%% by time, fold the rest in as the streaming "
                             "job does, and compare with a full retrain (--models: one ALS model, default als)")
    eval_p.add_argument("--param", action="append", metavar="KEY=VALUE",
                        help="with --streaming: override a hyper-parameter of that model, e.g. --param rank=64")
    eval_p.set_defaults(run=evaluate_command)

    tune_p = sub.add_parser("tune", help="search the TOML search space on a validation split")
    data_option(tune_p)
    tune_p.add_argument("--model", default="als", choices=sorted(MODELS))
    tune_p.add_argument("--config", dest="config_file", type=Path)
    tune_p.add_argument("--trials", type=int, help="random sample of the grid (default: all of it)")
    tune_p.add_argument("--folds", type=int, default=3,
                        help="validation splits each point is scored on; points rank by the mean (default 3)")
    tune_p.add_argument("--metric", default="ndcg", choices=("ndcg", "precision", "recall", "map", "rmse", "mae"),
                        help="what to optimise (rmse and mae: lower is better; for als-explicit)")
    tune_p.set_defaults(run=tune_command)

    promote_p = sub.add_parser("promote", help="challenger -> champion, only if it beats the champion")
    promote_p.add_argument("--metric", help="default: setting mlflow.promotion_metric")
    promote_p.add_argument("--margin", type=float, help="default: setting mlflow.promotion_margin")
    promote_p.add_argument("--registered-model", help="default: setting mlflow.registered_model")
    promote_p.set_defaults(run=promote_command)

    index_p = sub.add_parser("index", help="build films/users indices from the champion and swap aliases")
    index_p.add_argument("--alias", default=CHAMPION, choices=(CHAMPION, CHALLENGER))
    index_p.set_defaults(run=index_command)

    rollback_p = sub.add_parser("rollback", help="point champion back to the version it replaced")
    rollback_p.add_argument("--registered-model", help="default: setting mlflow.registered_model")
    rollback_p.set_defaults(run=rollback_command)

    report_p = sub.add_parser("report", help="HTML page comparing the approaches")
    data_option(report_p)
    report_p.add_argument("--protocol", choices=("stratified", "temporal"), default="stratified")
    report_p.add_argument("--models", help="comma-separated (default: all)")
    report_p.add_argument("--out", type=Path, help="HTML file (default var/reports/<fingerprint>.html)")
    report_p.set_defaults(run=report_command)
