"""MLflow tracking and the model registry: register, promote behind a gate, roll back.

A trained model is logged as a run (params, metrics, data fingerprint, the artifact) and
registered as a new version of ``cinerec`` with alias ``challenger``. ``promote`` moves
alias ``champion`` only if the challenger beats the champion on the same held-out split by
the configured metric and margin; each champion version remembers the one it replaced, so
``rollback`` can restore it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cinerec.core.artifact import ModelArtifact
from cinerec.core.settings import Settings

CHAMPION, CHALLENGER = "champion", "challenger"


class PromotionRefused(RuntimeError):
    """The challenger did not beat the champion; the message has both numbers."""


@dataclass
class Registry:
    settings: Settings
    name: str = ""    # registered model; default: setting mlflow.registered_model

    def __post_init__(self):
        import mlflow
        from mlflow import MlflowClient

        self.mlflow = mlflow
        data_dir = Path(self.settings.services.data_dir).resolve()
        uri = self.settings.mlflow.tracking_uri or f"sqlite:///{data_dir / 'mlflow.db'}"
        data_dir.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self.client = MlflowClient(uri, uri)
        self.name = self.name or self.settings.mlflow.registered_model
        experiment = self.client.get_experiment_by_name(self.settings.mlflow.experiment)
        # A tracking server keeps the artifacts itself (served at mlflow-artifacts:/), so that every
        # container of a deployed stack reads what the one that trained wrote.
        remote = uri.startswith(("http://", "https://"))
        self.experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
            self.settings.mlflow.experiment, artifact_location=None if remote else (data_dir / "mlartifacts").as_uri())

    # -- logging and registration -------------------------------------------------------------

    def log_trial(self, name: str, params: dict, metrics: dict, tags: dict | None = None,
                  parent_run_id: str | None = None) -> str:
        """One run with params and numeric metrics (tuning trials, evaluations)."""
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        run_id = run.info.run_id
        for key, value in _flat(params).items():
            self.client.log_param(run_id, key, value)
        for key, value in metrics.items():
            if isinstance(value, int | float):
                self.client.log_metric(run_id, key, float(value))
        self.client.set_terminated(run_id)
        return run_id

    def register(self, artifact: ModelArtifact, *, data_path: str, train_seconds: float) -> dict:
        """Logs the artifact as a run, registers it as a new version aliased ``challenger``."""
        tags = {"fingerprint": artifact.fingerprint, "split": artifact.split, "data_path": data_path,
                "model": artifact.model}
        run_id = self.log_trial(f"train-{artifact.model}", artifact.params,
                                {**artifact.metrics, "train_seconds": train_seconds}, tags)
        with tempfile.TemporaryDirectory() as tmp:
            artifact.save(Path(tmp) / "model")
            self.client.log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path="model")
        try:
            self.client.get_registered_model(self.name)
        except self.mlflow.exceptions.MlflowException:
            self.client.create_registered_model(self.name)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        version = self.client.create_model_version(self.name, source, run_id=run_id,
                                                   tags={**tags, "metrics": json.dumps(artifact.metrics)})
        self.client.set_registered_model_alias(self.name, CHALLENGER, version.version)
        return {"model": self.name, "version": int(version.version), "alias": CHALLENGER,
                "run_id": run_id}

    # -- reading ------------------------------------------------------------------------------

    def version(self, alias: str):
        """The model version behind ``alias``, or None."""
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except self.mlflow.exceptions.MlflowException:
            return None

    def load(self, alias: str = CHAMPION, *, number: str | None = None) -> ModelArtifact:
        """The model behind ``alias`` (or version ``number``)."""
        version = self.client.get_model_version(self.name, number) if number else self.version(alias)
        if version is None:
            raise LookupError(f"{self.name} has no {alias}: train one with `cinerec train`")
        with tempfile.TemporaryDirectory() as tmp:
            path = self.mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=tmp)
            return ModelArtifact.load(Path(path))

    # -- promotion ----------------------------------------------------------------------------

    def promote(self, *, metric: str | None = None, margin: float | None = None,
                champion_metrics: dict | None = None) -> dict:
        """Challenger -> champion if it wins on ``metric`` by ``margin`` on the same split.

        ``champion_metrics``: the champion's hyper-parameters re-evaluated on the challenger's
        split, when the champion was evaluated on another one (see ``cinerec promote``).
        """
        metric = metric or self.settings.mlflow.promotion_metric
        margin = self.settings.mlflow.promotion_margin if margin is None else margin
        challenger, champion = self.version(CHALLENGER), self.version(CHAMPION)
        if challenger is None:
            raise LookupError(f"{self.name} has no challenger: train one with `cinerec train`")
        new = json.loads(challenger.tags["metrics"])[metric]
        report = {"metric": metric, "margin": margin, "challenger": int(challenger.version),
                  "challenger_value": new}
        if champion is not None and champion.version == challenger.version:
            return {**report, "promoted": False, "reason": "challenger is already champion"}
        if champion is not None:
            if champion_metrics is None and champion.tags.get("split") != challenger.tags.get("split"):
                raise ValueError("champion and challenger were evaluated on different splits; "
                                 "re-evaluate the champion on the challenger's split first")
            old = (champion_metrics or json.loads(champion.tags["metrics"]))[metric]
            report.update({"champion": int(champion.version), "champion_value": old})
            if not new > old + margin:
                raise PromotionRefused(
                    f"challenger v{challenger.version} {metric}={new:.4f} does not beat champion "
                    f"v{champion.version} {metric}={old:.4f} by margin {margin:g}; champion kept")
            self.client.set_model_version_tag(self.name, challenger.version, "previous_champion",
                                              champion.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, challenger.version)
        return {**report, "promoted": True, "champion_now": int(challenger.version)}

    def rollback(self) -> dict:
        champion = self.version(CHAMPION)
        if champion is None:
            raise LookupError(f"{self.name} has no champion to roll back")
        previous = champion.tags.get("previous_champion")
        if not previous:
            raise LookupError(f"champion v{champion.version} replaced no earlier version; "
                              "nothing to roll back to")
        self.client.set_registered_model_alias(self.name, CHAMPION, previous)
        return {"model": self.name, "champion_was": int(champion.version),
                "champion_now": int(previous)}


def _flat(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
