"""The public repository's workflow calls the same make targets as `.ci/run`, and builds the image."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_workflow_runs_the_make_targets_and_builds_the_image():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))               # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(r.strip() == "make lint" for r in runs) and any(r.endswith("make test") for r in runs)
    assert any("deployment/Dockerfile" in r for r in runs) and (ROOT / "deployment" / "Dockerfile").is_file()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
