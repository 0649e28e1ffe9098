"""The job on the local cluster rehearsal (``ops/services/cluster.py``: 3 Kafka nodes, 3
Elasticsearch nodes, a Spark standalone master with 2 workers), in external mode with
``--master spark://…``, and one node killed with SIGKILL under load at a time: the Kafka broker
leading the ratings topic's first partition, the Elasticsearch node holding the users index's
primary, a Spark worker with its executor mid-batch. The job recovers by itself; each fault's
ledger (events sent / accepted / dead-lettered / lost / doubled) must show nothing lost and
nothing counted twice, and the time from the kill until a rating sent right after it is in its
user's document is printed with it. Between faults the killed node comes back (``cluster.up``),
as a node replaced by its operator would."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from chaos_helpers import Load, caught_up, figures, kill_tree, running_job, trained_world
from confluent_kafka.admin import AdminClient

from cinerec.core.events import RatingEvent
from cinerec.ops.services import cluster as local_cluster
from cinerec.platform.elasticsearch import connect, get_source
from cinerec.simulator.producer import Message, publish
from cinerec.simulator.world import Tastes

pytestmark = [pytest.mark.cluster, pytest.mark.spark, pytest.mark.chaos]
PROBE_USERS = iter(range(900_001, 900_100))       # new people: no load event touches them


@pytest.fixture(scope="module")
def rehearsal(base_settings, spark):
    """The cluster up, a synthetic world trained, promoted and indexed on it, and the streaming
    job running against it; yields (settings, cluster, data_dir, tastes, job, log)."""
    data_dir = Path(tempfile.mkdtemp(prefix="cinerec-cluster-"))
    data_dir.chmod(0o755)                            # Elasticsearch's own user reaches its nodes' folders
    own = base_settings.replace(services__data_dir=str(data_dir))
    try:
        cluster = local_cluster.up(own, workers=2)
        with trained_world(local_cluster.settings_for(own, cluster), data_dir, "cluster",
                           **local_cluster.environment(cluster)) as (settings, env):
            log = data_dir / "stream.log"
            job = running_job(env | {"CINEREC_STREAMING__MAX_OFFSETS_PER_TRIGGER": "3000"}, data_dir, log)
            try:
                yield settings, cluster, data_dir, Tastes.load(data_dir / "world" / "tastes.npz"), job, log
            finally:
                job.send_signal(signal.SIGTERM)
                job.wait(timeout=120)
    finally:
        local_cluster.down(own)
        shutil.rmtree(data_dir, ignore_errors=True)


def kill_under_load(rehearsal, victim, seed: int) -> dict:
    """Load at 300 events/s; ``victim()`` kills a node 15 s in and returns what it killed. A
    probe rating is sent right after the kill; returns the ledger with the probe's delay."""
    settings, cluster, data_dir, tastes, job, log = rehearsal
    es = connect(settings.elasticsearch)
    load = Load(settings, tastes, rate=300, count=12_000, seed=seed)
    load.start()
    time.sleep(15)
    log_at_kill = len(log.read_bytes())
    killed = victim()
    killed_at = time.monotonic()
    user, film = next(PROBE_USERS), 1 + seed % 80
    probe = RatingEvent(str(uuid.uuid4()), user, film, 4.5, int(time.time() * 1000), "probe")
    sent = publish(settings.kafka, [Message(probe.key, probe.to_json(), "valid")], topic=settings.kafka.ratings_topic)
    assert sent["failed"] == 0, sent
    while str(film) not in ((get_source(es, "users", str(user)) or {}).get("rated") or []):
        assert job.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < killed_at + 300, "the probe is not in its user's document 300 s after the kill"
        time.sleep(0.5)
    recovered_s = round(time.monotonic() - killed_at, 1)
    during = what_the_job_did(log, log_at_kill)
    load.join(timeout=600)
    assert load.report is not None and load.report["failed"] == 0, load.report     # the producer retried
    caught_up(settings, data_dir, es, job, log, timeout_s=600)
    report = figures(settings, data_dir, es, sent=load.report["sent"] + 1) | {"killed": killed,
                                                                             "recovered_s": recovered_s,
                                                                             "until_recovered": during}
    print(json.dumps(report))
    local_cluster.up(settings, workers=2)          # the node back for the next fault
    assert report["lost"] == 0 and report["doubled"] == 0, report
    return report


def what_the_job_did(log: Path, start: int) -> dict:
    """From the job's log since byte ``start``: batches completed, the slowest one's phases (Spark's
    durations and the driver's writes, seconds), and its own lines about the fault (retries, query
    restarts)."""
    text = log.read_bytes()[start:].replace(b"\0", b"").decode(errors="replace")
    batches = [json.loads(line) for line in text.splitlines() if line.startswith('{"batch"')]
    notes = [line[:160] for line in text.splitlines() if line.startswith("stream:") or "; retry " in line]
    slowest = max(batches, key=lambda b: b.get("spark_s", {}).get("triggerExecution", 0) + b["seconds"], default={})
    return {"batches": len(batches), "notes": notes[:4],
            "slowest_batch": {"driver_s": slowest.get("seconds"), **slowest.get("spark_s", {})}}


def test_kafka_broker_leading_the_ratings_killed(rehearsal):
    settings, cluster = rehearsal[:2]

    def leader() -> str:
        topic = settings.kafka.ratings_topic
        node = AdminClient(settings.kafka.client_config()).list_topics(topic, timeout=10).topics[topic].partitions[0]
        kill_tree(int((cluster.kafka_dir(node.leader) / "kafka.pid").read_text()))
        return f"kafka-{node.leader}"

    kill_under_load(rehearsal, leader, seed=21)


def test_elasticsearch_node_holding_primaries_killed(rehearsal):
    settings, cluster = rehearsal[:2]

    def primary_holder() -> str:
        shards = connect(settings.elasticsearch).cat.shards(index="users", format="json")
        name = next(shard["node"] for shard in shards if shard["prirep"] == "p")
        kill_tree(int((cluster.elasticsearch_dir(name) / "elasticsearch.pid").read_text()))
        return name

    kill_under_load(rehearsal, primary_holder, seed=22)


def test_spark_worker_killed_mid_batch(rehearsal):
    cluster = rehearsal[1]

    def worker() -> str:
        # the worker JVM and its executor (a machine lost): the driver re-runs the batch's tasks on the
        # other worker's executor, which loads the lost partitions' state from the checkpoint
        kill_tree(int((cluster.worker_dir(1) / "spark.pid").read_text()))
        return "spark-worker-1"

    kill_under_load(rehearsal, worker, seed=23)
