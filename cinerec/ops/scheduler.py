"""The Dagster instance the operations loop runs on: a persistent home under ``<data_dir>/dagster``,
the scheduler that ticks there (``dagster dev``: web UI + daemon + code server of ``cinerec.ops.pipeline``)
and the runs handed to it.

    home(settings)        <data_dir>/dagster with dagster.yaml (run queue: one run at a time) and
                          workspace.yaml (the code location ``cinerec`` = ``cinerec.ops.pipeline``)
    start(settings)       the scheduler as a child process, UI on 127.0.0.1:<ops.dagster_port>
    submit(settings, …)   a run of the retraining job, queued on that instance (the daemon launches
                          it); ``None`` when one is queued or running already
    reexecute(…)          a failed run again from its failed step (outputs of the steps that
                          succeeded are read from the instance's storage, not recomputed)

Runs, ticks and re-executions go through the web server's GraphQL API, the one its UI uses.
Without a running scheduler, ``execute_here`` runs the job in the calling process on the same
persistent instance: the run is recorded there all the same (the UI shows it later) and can be
re-executed from its failed step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from cinerec.core.settings import PROJECT_ROOT, Settings

LOCATION, REPOSITORY, JOB = "cinerec", "__repository__", "retrain"
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def home(settings: Settings) -> Path:
    """The instance's directory, written on first use: runs, event logs, ticks and the steps'
    outputs (for re-execution) live there across restarts."""
    path = (Path(settings.services.data_dir) / "dagster").resolve()
    path.mkdir(parents=True, exist_ok=True)
    instance = {"run_queue": {"max_concurrent_runs": 1},       # one retraining at a time
                "telemetry": {"enabled": False}}
    workspace = {"load_from": [{"python_module": {"module_name": "cinerec.ops.pipeline", "location_name": LOCATION,
                                                  "working_directory": str(PROJECT_ROOT),
                                                  "executable_path": sys.executable}}]}
    (path / "dagster.yaml").write_text(yaml.safe_dump(instance, sort_keys=False))
    (path / "workspace.yaml").write_text(yaml.safe_dump(workspace, sort_keys=False))
    return path


def start(settings: Settings, *, log: Path | None = None) -> subprocess.Popen:
    """``dagster dev`` on the instance (its own session; SIGTERM stops its children too)."""
    path = home(settings)
    logs = Path(settings.services.data_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(path / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(settings.ops.dagster_port)]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, "DAGSTER_HOME": str(path)},
                            stdout=subprocess.DEVNULL, stderr=(log or logs / "dagster.log").open("a"),
                            start_new_session=True)


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.ops.dagster_port}"


def answering(settings: Settings) -> bool:
    """The scheduler's web server answers and has loaded the pipeline's code location."""
    try:
        found = graphql(settings, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
    except OSError:
        return False
    return bool(found.get("repositoriesOrError", {}).get("nodes"))


def wait_until_answering(settings: Settings, process: subprocess.Popen | None = None,
                         timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not answering(settings):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the scheduler (dagster dev) exited with {process.returncode}: "
                               f"see {Path(settings.services.data_dir) / 'logs' / 'dagster.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the scheduler did not answer at {url(settings)} within {timeout_s:.0f} s")
        time.sleep(1.0)


def graphql(settings: Settings, query: str, variables: dict | None = None, timeout_s: float = 30.0) -> dict:
    """One GraphQL request to the scheduler's web server; its ``data`` (raises on errors)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url(settings)}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        found = json.loads(answer.read())
    if found.get("errors"):
        raise RuntimeError(f"Dagster refused the request: {found['errors'][0].get('message')}")
    return found["data"]


_LAUNCHED = """... on LaunchRunSuccess { run { runId status } }
               ... on PythonError { message }
               ... on InvalidStepError { invalidStepKey }
               ... on RunConflict { message }
               ... on UnauthorizedError { message }"""


def submit(settings: Settings, reason: str) -> str | None:
    """Queues a run of the retraining job tagged ``trigger=<reason>``; its run id, or None when a
    retraining is already queued or running (the one-at-a-time rule of the whole loop)."""
    if active_runs(settings):
        return None
    params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": JOB},
              "runConfigData": {}, "executionMetadata": {"tags": [{"key": "trigger", "value": reason}]}}
    found = graphql(settings, f"""mutation($p: ExecutionParams!) {{ launchRun(executionParams: $p) {{
                                    __typename {_LAUNCHED} }} }}""", {"p": params})["launchRun"]
    return _run_id(found)


def reexecute(settings: Settings, run_id: str) -> str:
    """Queues the failed run ``run_id`` again from its failed step; the new run's id."""
    found = graphql(settings, f"""mutation($p: ReexecutionParams!) {{ launchRunReexecution(reexecutionParams: $p) {{
                                    __typename {_LAUNCHED} }} }}""",
                    {"p": {"parentRunId": run_id, "strategy": "FROM_FAILURE"}})["launchRunReexecution"]
    return _run_id(found)


def _run_id(launched: dict) -> str:
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"Dagster did not launch the run: {launched}")
    return launched["run"]["runId"]


def runs(settings: Settings, *, statuses: list[str] | None = None, created_after: float | None = None) -> list[dict]:
    """Retraining runs, newest first: id, status, trigger (``statuses``, ``created_after``: epoch s)."""
    query = {"pipelineName": JOB, **({"statuses": statuses} if statuses else {}),
             **({"createdAfter": created_after} if created_after is not None else {})}
    found = graphql(settings, """query($f: RunsFilter) { runsOrError(filter: $f) {
                                   ... on Runs { results { runId status tags { key value } } } } }""", {"f": query})
    return [{"run_id": run["runId"], "status": run["status"],
             "trigger": next((t["value"] for t in run["tags"] if t["key"] == "trigger"), None)}
            for run in found["runsOrError"]["results"]]


def active_runs(settings: Settings) -> list[str]:
    """Ids of the retraining runs queued or running."""
    return [run["run_id"] for run in runs(settings, statuses=ACTIVE)]


def run_report(settings: Settings, run_id: str) -> dict:
    """A run's status, trigger, parent run and each step's status (the steps it executed)."""
    found = graphql(settings, """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                                   runId status parentRunId tags { key value }
                                   stepStats { stepKey status } } } }""", {"id": run_id})["runOrError"]
    if found["__typename"] != "Run":
        raise LookupError(f"no run {run_id} on the instance")
    return {"run_id": found["runId"], "status": found["status"], "parent_run_id": found["parentRunId"],
            "trigger": next((t["value"] for t in found["tags"] if t["key"] == "trigger"), None),
            "steps": {s["stepKey"]: s["status"] for s in found["stepStats"]}}


def wait_for_run(settings: Settings, run_id: str, timeout_s: float = 900.0) -> dict:
    """The run's report once it has finished (success, failure or cancelled)."""
    deadline = time.monotonic() + timeout_s
    while (report := run_report(settings, run_id))["status"] not in FINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {report['status']} after {timeout_s:.0f} s")
        time.sleep(2.0)
    return report


def ticks(settings: Settings, sensor: str, limit: int = 20) -> list[dict]:
    """The latest ticks of a sensor (newest first): status, time, skip reason, runs requested."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": sensor}
    found = graphql(settings, """query($s: SensorSelector!, $n: Int) { sensorOrError(sensorSelector: $s) {
                                   __typename ... on Sensor { sensorState { ticks(limit: $n) {
                                   status timestamp skipReason runIds error { message } } } } } }""",
                    {"s": selector, "n": limit})["sensorOrError"]
    if found["__typename"] != "Sensor":
        raise LookupError(f"no sensor {sensor} in the code location {LOCATION}")
    return [{"status": t["status"], "at": t["timestamp"], "skip_reason": t["skipReason"], "run_ids": t["runIds"],
             "error": (t["error"] or {}).get("message")} for t in found["sensorState"]["ticks"]]


def execute_here(settings: Settings, reason: str, *, from_failure_of: str | None = None) -> dict:
    """Runs the retraining job in this process on the persistent instance (no scheduler running);
    with ``from_failure_of``, re-executes that failed run from its failed step. The run's report."""
    os.environ["DAGSTER_HOME"] = str(home(settings))
    from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

    from .pipeline import retrain

    with DagsterInstance.get() as instance:
        options = ReexecutionOptions.from_failure(from_failure_of, instance) if from_failure_of else None
        with execute_job(reconstructable(retrain), instance, tags={"trigger": reason},
                         reexecution_options=options, raise_on_error=False) as result:
            steps = {e.step_key: "SUCCESS" if e.event_type_value == "STEP_SUCCESS" else "FAILURE"
                     for e in result.all_events
                     if e.step_key and e.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")}
            return {"run_id": result.run_id, "status": "SUCCESS" if result.success else "FAILURE",
                    "parent_run_id": from_failure_of, "trigger": reason, "steps": steps}
