"""Faults under load, each judged by the ledger: the Kafka broker or Elasticsearch killed with
SIGKILL and started again, the checkpoint's disk read-only or full. The running job recovers by
itself (no restart by hand), producers retry or report, the API answers 503 meanwhile, and in the
end nothing is lost and nothing counted twice.

The tests share one trained world, topic and checkpoint (each fault starts where the last left
off, as in production); each prints its figures (events sent, accepted, dead-lettered, lost,
doubled) for the record."""

from __future__ import annotations

import subprocess
import time

import pytest
from chaos_helpers import Load, caught_up, figures, running_job, sigkill, stopped_cleanly, trained_world

from cinerec.api import create_app
from cinerec.ops import services as svc
from cinerec.ops.services import engines
from cinerec.simulator.world import Tastes

pytestmark = [pytest.mark.services, pytest.mark.spark, pytest.mark.chaos]
KEY = "fault-test-key"


@pytest.fixture(scope="module")
def world(services, base_settings, fresh_indices, spark, tmp_path_factory):
    """A trained, promoted and indexed synthetic world on topics of this module."""
    data_dir = tmp_path_factory.mktemp("faults") / "var"
    with trained_world(base_settings, data_dir, "faults") as (settings, env):
        yield settings, env, data_dir, Tastes.load(data_dir / "world" / "tastes.npz")


def remount(mount, mode: str) -> None:
    """``mount -o remount,<mode>``; the kernel refuses a read-only remount while a write is in
    flight on the disk ("mount point is busy"), so it is tried again for up to 30 s."""
    deadline = time.monotonic() + 30
    while (done := subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], capture_output=True,
                                  text=True)).returncode != 0:
        assert time.monotonic() < deadline, f"cannot remount {mount} {mode}: {done.stderr}"
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["read-only", "disk-full"])
def test_checkpoint_disk_read_only_or_full(fault, world, fresh_indices, tmp_path):
    """The checkpoint on a small filesystem of its own that turns read-only or fills up mid-run:
    the job says so in one line and keeps trying; once the disk is writable again it resumes, and
    the state it recovers is not corrupted (the ledger is exact)."""
    settings, env, data_dir, tastes = world
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        # a new checkpoint on the small disk; batches small enough that the load outlasts the first one
        job_env = env | {"CINEREC_SERVICES__DATA_DIR": str(mount),
                         "CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "2000",
                         "CINEREC_STREAMING__STALL_S": "45"}       # a fault that hangs Spark is noticed in time
        (mount / "world").symlink_to(data_dir / "world")          # the champion's data, read as usual
        for name in ("mlflow.db", "mlartifacts", "datasets", "features"):
            if (data_dir / name).exists():
                (mount / name).symlink_to(data_dir / name)
        log = tmp_path / "stream.log"
        load = Load(settings, tastes, rate=300, count=18_000, seed=13 if fault == "read-only" else 14)
        load.start()
        job = running_job(job_env, mount, log)
        if fault == "read-only":
            remount(mount, "ro")
        else:
            subprocess.run(["fallocate", "-l", "64m", str(mount / "filler")], check=False)
            subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler2'}", "bs=1M"], capture_output=True)
        # One line says why the query stopped: the OS error, or the checkpoint file it could not write
        # (which of the two depends on the step the fault hits).
        expected = "Read-only file system" if fault == "read-only" else "No space left on device"
        deadline = time.monotonic() + 120
        failures = lambda: [line for line in log.read_text().splitlines()  # noqa: E731
                            if line.startswith("stream: the query failed")]
        while not (failed := failures()):
            assert job.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no clear error: {log.read_text()[-3000:]}"
            time.sleep(1)
        assert expected in failed[0] or "checkpoint-v" in failed[0], failed[0]
        time.sleep(5)
        if fault == "read-only":
            remount(mount, "rw")
        else:
            for filler in ("filler", "filler2"):
                (mount / filler).unlink(missing_ok=True)
        load.join(timeout=400)
        caught_up(settings, mount, fresh_indices, job, log, timeout_s=900)
        stopped_cleanly(job, log)
        report = figures(settings, mount, fresh_indices, sent=load.report["sent"])
        assert report["lost"] == 0 and report["doubled"] == 0
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_kafka_broker_killed_under_load_and_restarted(world, base_settings, fresh_indices, tmp_path):
    settings, env, data_dir, tastes = world
    log = tmp_path / "stream.log"
    load = Load(settings, tastes, rate=500, count=15_000, seed=11)
    load.start()
    # the job starts from the topic's beginning (the disk tests' events too): batches big enough to catch up
    job = running_job(env | {"CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "5000"}, data_dir, log)
    sigkill(engines.kafka_dir(base_settings) / "kafka.pid")
    api = create_app(settings.replace(api__api_keys=KEY)).test_client()
    refused = api.post("/ratings", json={"user_id": 1, "movie_id": 1, "rating": 4.0}, headers={"X-API-Key": KEY})
    assert refused.status_code == 503 and refused.get_json()["error"] == "event log is unavailable"
    time.sleep(10)
    svc.up(base_settings)                                   # the broker again, on its own data
    load.join(timeout=400)
    assert load.report is not None and load.report["failed"] == 0, load.report   # the producer retried
    caught_up(settings, data_dir, fresh_indices, job, log)
    stopped_cleanly(job, log)
    report = figures(settings, data_dir, fresh_indices, sent=load.report["sent"])
    assert report["lost"] == 0 and report["doubled"] == 0


def test_elasticsearch_killed_for_30_s_at_2000_events_per_s(world, base_settings, fresh_indices, tmp_path):
    settings, env, data_dir, tastes = world
    log = tmp_path / "stream.log"
    load = Load(settings, tastes, rate=2000, count=90_000, seed=12)
    load.start()
    job = running_job(env | {"CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "20000"}, data_dir, log)
    sigkill(engines.elasticsearch_dir(base_settings) / "elasticsearch.pid")
    api = create_app(settings.replace(elasticsearch__request_timeout_s=2)).test_client()
    outage_started = time.monotonic()
    down = api.get("/films/1")
    assert down.status_code == 503 and down.get_json()["error"] == "search is unavailable"
    assert down.headers["Retry-After"]
    time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
    svc.up(base_settings)
    deadline = time.monotonic() + 60
    while api.get("/films/1").status_code != 200:              # the API recovers by itself
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(1)
    load.join(timeout=400)
    assert load.report is not None and load.report["failed"] == 0, load.report
    caught_up(settings, data_dir, fresh_indices, job, log)
    text = stopped_cleanly(job, log)
    report = figures(settings, data_dir, fresh_indices, sent=load.report["sent"])
    assert report["lost"] == 0 and report["doubled"] == 0
    assert "retry" in text                                        # it backed off while the node was away
