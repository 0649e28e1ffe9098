"""A local cluster rehearsal: three Kafka nodes (KRaft, replication 3, ``min.insync.replicas`` 2),
three Elasticsearch nodes (a replica per shard) and a Spark standalone master with workers, each in
its own JVM on loopback, from the same jars as the embedded engines (``engines.py``) and from
pyspark's own distribution. The system runs against it in ``external`` mode (``settings_for``),
the streaming job with ``--master spark://…`` and its checkpoint under the data directory, which
every worker and the driver share (one machine).

    <data_dir>/cluster/cluster.json          the ports, the Kafka cluster id, the workers asked for
    <data_dir>/cluster/kafka-<n>/            server.properties, data/, logs/, kafka.pid
    <data_dir>/cluster/elasticsearch-<n>/    config/, data/, logs/, elasticsearch.pid (the ES user's)
    <data_dir>/cluster/spark-master/         spark.pid, spark.log
    <data_dir>/cluster/spark-worker-<n>/     spark.pid, spark.log, work/ (executors' folders)

``up`` starts whatever is not running (a node killed by a fault test comes back the same way), so
it is also the recovery after a fault. Heaps are small so the whole cluster fits next to the
embedded engines on a laptop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cinerec.core.errors import ServiceError
from cinerec.core.settings import Settings

from . import _process, engines

HOST = "127.0.0.1"
NODES = 3                      # Kafka nodes and Elasticsearch nodes
KAFKA_HEAP_MB = 256
ELASTICSEARCH_HEAP_MB = 384
SPARK_DAEMON_MB = 256          # master and worker JVMs (executors are the workers' children)
WORKER_MEMORY_MB = 1536        # what a worker offers executors (spark.executor.memory: batch.spark)


@dataclass(frozen=True)
class Cluster:
    """Where the cluster of a data directory lives and the ports it was given on first start."""

    root: Path
    layout: dict

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{node['port']}" for node in self.layout["kafka"])

    @property
    def elasticsearch_urls(self) -> str:
        return ",".join(f"http://{HOST}:{node['http_port']}" for node in self.layout["elasticsearch"])

    @property
    def spark_master(self) -> str:
        return f"spark://{HOST}:{self.layout['spark']['port']}"

    def kafka_dir(self, node_id: int) -> Path:
        return self.root / f"kafka-{node_id}"

    def elasticsearch_dir(self, name: str) -> Path:
        return self.root / name

    def worker_dir(self, number: int) -> Path:
        return self.root / f"spark-worker-{number}"

    def pid_files(self) -> dict[str, Path]:
        """{process name: its pid file} of every process of the cluster."""
        files = {f"kafka-{n['node_id']}": self.kafka_dir(n["node_id"]) / "kafka.pid" for n in self.layout["kafka"]}
        files |= {n["name"]: self.elasticsearch_dir(n["name"]) / "elasticsearch.pid"
                  for n in self.layout["elasticsearch"]}
        files["spark-master"] = self.root / "spark-master" / "spark.pid"
        files |= {f"spark-worker-{n}": self.worker_dir(n) / "spark.pid"
                  for n in range(1, self.layout["spark"]["workers"] + 1)}
        return files


def overrides(cluster: Cluster) -> dict[str, str]:
    """The settings (``section__key``) that point Cinerec at the cluster: one place, used by
    ``settings_for`` and printed as CINEREC_* variables by ``cinerec services up --cluster``."""
    return {"services__mode": "external", "kafka__bootstrap_servers": cluster.bootstrap_servers,
            "kafka__replication_factor": str(NODES), "elasticsearch__url": cluster.elasticsearch_urls,
            "streaming__spark_master": cluster.spark_master}


def settings_for(settings: Settings, cluster: Cluster) -> Settings:
    return settings.replace(**overrides(cluster))


def environment(cluster: Cluster) -> dict[str, str]:
    return {f"CINEREC_{key.upper()}": value for key, value in overrides(cluster).items()}


def of(settings: Settings, workers: int | None = None) -> Cluster:
    """The cluster of ``settings``' data directory: its layout read back, or new free ports chosen
    (and kept) on first use. ``workers`` changes how many Spark workers ``up`` runs."""
    root = Path(settings.services.data_dir).resolve() / "cluster"
    saved = root / "cluster.json"
    if saved.exists():
        layout = json.loads(saved.read_text())
    else:
        ports = iter(_free_ports(4 * NODES + 2))
        layout = {"kafka_cluster_id": engines.kafka_cluster_id(settings),
                  "kafka": [{"node_id": n, "port": next(ports), "controller_port": next(ports)}
                            for n in range(1, NODES + 1)],
                  "elasticsearch": [{"name": f"elasticsearch-{n}", "http_port": next(ports),
                                     "transport_port": next(ports)} for n in range(1, NODES + 1)],
                  "spark": {"port": next(ports), "webui_port": next(ports), "workers": 2}}
    if workers is not None:
        layout["spark"]["workers"] = workers
    root.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(layout, indent=1))
    return Cluster(root, layout)


def up(settings: Settings, workers: int | None = None) -> Cluster:
    """Starts every process of the cluster that is not running and waits until Kafka has all its
    brokers, Elasticsearch all its nodes and the Spark master all its workers. Stops workers
    beyond ``workers``."""
    cluster = of(settings, workers)
    started = time.monotonic()
    voters = ",".join(f"{n['node_id']}@{HOST}:{n['controller_port']}" for n in cluster.layout["kafka"])
    for node in cluster.layout["kafka"]:
        engines.start_kafka_node(settings.replace(services__kafka_heap_mb=KAFKA_HEAP_MB),
                                 cluster.kafka_dir(node["node_id"]), node_id=node["node_id"], host=HOST,
                                 port=node["port"], controller_port=node["controller_port"], voters=voters,
                                 replication=NODES, cluster_id=cluster.layout["kafka_cluster_id"])
    with ThreadPoolExecutor(NODES) as pool:      # each launcher waits for its node: start them side by side
        for future in [pool.submit(_start_elasticsearch_node, settings, cluster, node)
                       for node in cluster.layout["elasticsearch"]]:
            future.result()
    _start_spark(settings, cluster)
    deadline = started + max(settings.services.start_timeout_s, 180)
    _wait("Kafka brokers", lambda: _kafka_brokers(cluster) == NODES, deadline)
    _wait("Elasticsearch nodes", lambda: _elasticsearch_nodes(cluster) == NODES, deadline)
    _wait("Spark workers", lambda: alive_workers(cluster) == cluster.layout["spark"]["workers"], deadline)
    return cluster


def down(settings: Settings) -> dict[str, bool]:
    """Stops every process of the cluster (data kept); {process: whether it was running}."""
    root = Path(settings.services.data_dir).resolve() / "cluster"
    if not (root / "cluster.json").exists():
        return {}
    cluster = Cluster(root, json.loads((root / "cluster.json").read_text()))
    files = cluster.pid_files() | {f"spark-worker-{n}": cluster.worker_dir(n) / "spark.pid"
                                   for n in range(1, NODES + 1)}
    with ThreadPoolExecutor(len(files)) as pool:
        return dict(zip(files, pool.map(_process.stop, files.values())))


def status(cluster: Cluster) -> dict:
    return {"kafka": {"bootstrap_servers": cluster.bootstrap_servers, "brokers": _kafka_brokers(cluster)},
            "elasticsearch": {"urls": cluster.elasticsearch_urls, "nodes": _elasticsearch_nodes(cluster)},
            "spark": {"master": cluster.spark_master, "alive_workers": alive_workers(cluster)},
            "processes": {name: _process.read_pid(path) for name, path in cluster.pid_files().items()},
            "settings": environment(cluster)}


# -- Elasticsearch ------------------------------------------------------------------------------

def _start_elasticsearch_node(settings: Settings, cluster: Cluster, node: dict) -> int:
    directory = cluster.elasticsearch_dir(node["name"])
    seeds = ", ".join(f'"{HOST}:{n["transport_port"]}"' for n in cluster.layout["elasticsearch"])
    discovery = [f"transport.port: {node['transport_port']}", f"discovery.seed_hosts: [{seeds}]"]
    if not any((directory / "data").glob("*")):     # bootstrapping names the first masters once, never after
        names = ", ".join(f'"{n["name"]}"' for n in cluster.layout["elasticsearch"])
        discovery.append(f"cluster.initial_master_nodes: [{names}]")
    yml = engines.elasticsearch_yml("cinerec-cluster", node["name"], HOST, node["http_port"], directory, discovery)
    return engines.start_elasticsearch_node(settings, directory, yml, heap_mb=ELASTICSEARCH_HEAP_MB,
                                             port=node["http_port"])


def _elasticsearch_nodes(cluster: Cluster) -> int:
    for node in cluster.layout["elasticsearch"]:      # any live node answers for the cluster
        health = _get_json(f"http://{HOST}:{node['http_port']}/_cluster/health")
        if health:
            return health["number_of_nodes"]
    return 0


# -- Kafka --------------------------------------------------------------------------------------

def _kafka_brokers(cluster: Cluster) -> int:
    from cinerec.platform.kafka import broker_count

    return broker_count(cluster.bootstrap_servers)


# -- Spark standalone ---------------------------------------------------------------------------

def _start_spark(settings: Settings, cluster: Cluster) -> None:
    spark = cluster.layout["spark"]
    _spark_daemon(settings, cluster.root / "spark-master", "org.apache.spark.deploy.master.Master",
                  "--host", HOST, "--port", str(spark["port"]), "--webui-port", str(spark["webui_port"]))
    _wait("the Spark master", lambda: _get_json(f"http://{HOST}:{spark['webui_port']}/json") is not None,
          time.monotonic() + 60)
    for number in range(1, NODES + 1):
        directory = cluster.worker_dir(number)
        if number > spark["workers"]:
            _process.stop(directory / "spark.pid")
            continue
        _spark_daemon(settings, directory, "org.apache.spark.deploy.worker.Worker",
                      "--host", HOST, "--cores", "1", "--memory", f"{WORKER_MEMORY_MB}m",
                      "--work-dir", str(directory / "work"), "--webui-port", str(_process.free_port(HOST)),
                      cluster.spark_master)


def _spark_daemon(settings: Settings, directory: Path, main: str, *args: str) -> int:
    """``spark-class <main> <args>`` from pyspark's distribution unless it runs; its pid (the
    launcher execs the JVM, so the pid is the JVM's)."""
    import pyspark

    pid_file = directory / "spark.pid"
    if (pid := _process.read_pid(pid_file)) is not None:
        return pid
    directory.mkdir(parents=True, exist_ok=True)
    home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(home), "JAVA_HOME": str(engines.java_home(settings)),
           "SPARK_DAEMON_MEMORY": f"{SPARK_DAEMON_MB}m", "SPARK_LOG_DIR": str(directory),
           "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    with open(directory / "spark.log", "ab") as out:
        process = subprocess.Popen([str(home / "bin" / "spark-class"), main, *args], env=env, cwd=directory,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process.pid


def alive_workers(cluster: Cluster) -> int:
    """Workers the master counts as alive (a killed one stays alive for it until its heartbeat
    times out; the driver notices a lost executor at once)."""
    state = _get_json(f"http://{HOST}:{cluster.layout['spark']['webui_port']}/json")
    return sum(1 for worker in (state or {}).get("workers", []) if worker["state"] == "ALIVE")


# -- helpers ------------------------------------------------------------------------------------

def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def _wait(what: str, ready, deadline: float) -> None:
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceError(f"the local cluster's {what} are not all up in time; logs under the cluster's folders")
        time.sleep(1)


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(_process.free_port(HOST))
    return sorted(ports)
