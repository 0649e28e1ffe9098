"""The embedded engines: an Apache Kafka broker (KRaft, one combined broker + controller) and an
Elasticsearch node, each in its own JVM, from the jars ``make install`` fetched from Maven Central
(``deployment/engines/pom.xml``) into ``services.engines_dir``.

    <data_dir>/kafka/          server.properties, data/ (formatted on first start), logs/, kafka.pid
    <data_dir>/elasticsearch/  config/, data/, logs/, elasticsearch.pid — owned by the ES user

Elasticsearch will not run as root: when we are root it runs as ``services.elasticsearch_user``, a
system user created here when missing. When that user cannot enter ``<data_dir>`` (a checkout in a
private folder), the node's folder is ``/var/tmp/cinerec-elasticsearch-<hash of data_dir>`` instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from cinerec.core.errors import ServiceError
from cinerec.core.settings import PACKAGE_DIR, Settings

from . import _process

KAFKA_LOG_CONFIG = PACKAGE_DIR / "config" / "kafka-log4j2.yaml"
MIN_JAVA = 17


# -- where things are -------------------------------------------------------------------------

def java_home(settings: Settings) -> Path:
    """The JDK of the engines, checked to be Java 17 or newer."""
    home = settings.services.java_home or os.environ.get("JAVA_HOME", "")
    if not home:
        java = shutil.which("java")
        if not java:
            raise ServiceError("no Java found: install Java 17+ (apt-get install openjdk-17-jre-headless) "
                               "or set services.java_home")
        home = str(Path(os.path.realpath(java)).parent.parent)
    version = subprocess.run([str(Path(home) / "bin" / "java"), "-version"], capture_output=True, text=True)
    major = re.search(r'version "(\d+)', version.stderr)
    if not major or int(major[1]) < MIN_JAVA:
        raise ServiceError(f"Java at {home} is too old or broken; the engines need Java {MIN_JAVA}+")
    return Path(home)


def kafka_dir(settings: Settings) -> Path:
    return Path(settings.services.data_dir).resolve() / "kafka"


def elasticsearch_dir(settings: Settings) -> Path:
    """``<data_dir>/elasticsearch``, or, when the node's user cannot enter ``<data_dir>`` (a checkout in
    a mode-700 folder: ``mktemp -d``, /root), a folder named after ``<data_dir>`` in a place every user
    reaches. The one answer for start, status, stop and logs, and the same one on every start, so the
    node finds its data again."""
    data_dir = Path(settings.services.data_dir).resolve()
    user = _existing_elasticsearch_user(settings)
    if not user or _can(user, "-x", _nearest_existing(data_dir)):
        return data_dir / "elasticsearch"
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return _shared_tmp() / f"cinerec-elasticsearch-{digest}"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent: what we create below it is ours, made 0755."""
    while not path.exists():
        path = path.parent
    return path


def _shared_tmp() -> Path:
    """/var/tmp (kept across reboots, as a node's data should be) when there is one, else the temp folder."""
    return Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())


def _installed(settings: Settings, pattern: str) -> Path:
    found = sorted(settings.services.engines_path().glob(pattern))
    if not found:
        raise ServiceError(f"{settings.services.engines_path()}/{pattern} is missing: run `make install` "
                           f"(fetches the engines from Maven Central with deployment/engines/pom.xml)")
    return found[-1]


def check_endpoints(settings: Settings) -> tuple[tuple[str, int], tuple[str, int]]:
    """(Kafka host, port), (Elasticsearch host, port): one of each, on plain http."""
    host, _, port = settings.kafka.bootstrap_servers.strip().rpartition(":")
    es = urlparse(settings.elasticsearch.url)
    if "," in settings.kafka.bootstrap_servers or not host or not port.isdigit() \
            or es.scheme != "http" or not es.hostname or not es.port:
        raise ServiceError("embedded mode needs one Kafka host:port and an http://host:port "
                           "Elasticsearch URL; set services.mode = 'external' for anything else")
    return (host, int(port)), (es.hostname, es.port)


# -- Kafka --------------------------------------------------------------------------------------

def start_kafka(settings: Settings) -> int:
    """Starts the broker unless it runs; returns its pid. Formats the storage on first start."""
    directory = kafka_dir(settings)
    (host, port), _ = check_endpoints(settings)
    controller_port = _process.free_port(host)
    return start_kafka_node(settings, directory, node_id=1, host=host, port=port, controller_port=controller_port,
                            voters=f"1@{host}:{controller_port}", replication=1)


def start_kafka_node(settings: Settings, directory: Path, *, node_id: int, host: str, port: int,
                     controller_port: int, voters: str, replication: int, cluster_id: str = "") -> int:
    """One combined broker + controller under ``directory`` unless it runs; its pid. ``voters``
    names every controller of the quorum (``id@host:port,…``); ``replication`` is that of the
    internal topics and the default of new ones (the cluster of ``cluster.py``: 3). The storage
    is formatted on first start, with ``cluster_id`` (every node of a cluster shares one) or a new one."""
    pid_file = directory / "kafka.pid"
    if (pid := _process.read_pid(pid_file)) is not None:
        return pid
    _process.require_free_port(port, "Kafka")
    classpath = f"{_installed(settings, 'kafka')}/*"
    java = str(java_home(settings) / "bin" / "java")
    for sub in ("data", "logs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    properties = directory / "server.properties"
    properties.write_text(_kafka_properties(node_id, host, port, controller_port, voters, directory / "data",
                                            replication))
    if not (directory / "data" / "meta.properties").exists():
        storage_tool = (java, classpath, directory / "logs", "kafka.tools.StorageTool")
        cluster_id = cluster_id or _run_java(*storage_tool, "random-uuid").strip()
        _run_java(*storage_tool, "format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted")
    heap = f"{settings.services.kafka_heap_mb}m"
    with open(directory / "logs" / "stdout.log", "ab") as out:
        process = subprocess.Popen(
            [java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={KAFKA_LOG_CONFIG}", f"-Dkafka.logs.dir={directory / 'logs'}",
             "-cp", classpath, "kafka.Kafka", str(properties)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process.pid


def kafka_cluster_id(settings: Settings) -> str:
    """A new KRaft cluster id (what every node of one cluster is formatted with)."""
    java = str(java_home(settings) / "bin" / "java")
    with tempfile.TemporaryDirectory() as logs:
        return _run_java(java, f"{_installed(settings, 'kafka')}/*", Path(logs), "kafka.tools.StorageTool",
                         "random-uuid").strip()


def _kafka_properties(node_id: int, host: str, port: int, controller_port: int, voters: str, data: Path,
                      replication: int) -> str:
    # A combined broker + controller. With replication above 1 a write needs two in-sync copies
    # (acks=all), so one node may die without losing an acknowledged event.
    min_isr = min(2, replication)
    return "\n".join([
        "process.roles=broker,controller", f"node.id={node_id}", f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={data}", "num.partitions=1", "auto.create.topics.enable=false",
        f"default.replication.factor={replication}", f"min.insync.replicas={min_isr}",
        f"offsets.topic.replication.factor={replication}", "offsets.topic.num.partitions=3",
        f"transaction.state.log.replication.factor={replication}", f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={replication}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0", ""])


def _run_java(java: str, classpath: str, logs: Path, main: str, *args: str) -> str:
    result = subprocess.run([java, "-cp", classpath, f"-Dlog4j2.configurationFile={KAFKA_LOG_CONFIG}",
                             f"-Dkafka.logs.dir={logs}", main, *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ServiceError(f"{main} {args[0]} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return result.stdout


# -- Elasticsearch ------------------------------------------------------------------------------

def start_elasticsearch(settings: Settings) -> int:
    """Starts the node unless it runs (``bin/elasticsearch -d`` returns once it is up); its pid."""
    user = _elasticsearch_user(settings)
    data_dir = Path(settings.services.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)          # decided on the folder itself, as status and down will
    directory = elasticsearch_dir(settings)
    _, (host, port) = check_endpoints(settings)
    if directory != data_dir / "elasticsearch" and _process.read_pid(directory / "elasticsearch.pid") is None:
        print(f"services: Elasticsearch's data, config and logs are in {directory}, as user {user!r} it runs as "
              f"cannot enter {data_dir}", file=sys.stderr, flush=True)
    return start_elasticsearch_node(settings, directory, elasticsearch_yml(
        "cinerec", "cinerec-1", host, port, directory, ["discovery.type: single-node"]),
        heap_mb=settings.services.elasticsearch_heap_mb, port=port)


def start_elasticsearch_node(settings: Settings, directory: Path, yml: str, *, heap_mb: int, port: int) -> int:
    """The node configured by ``yml`` (HTTP on ``port``) under ``directory`` unless it runs; its pid."""
    pid_file = directory / "elasticsearch.pid"
    if (pid := _process.read_pid(pid_file)) is not None:
        return pid
    _process.require_free_port(port, "Elasticsearch")
    home = _installed(settings, "elasticsearch-*")
    user = _elasticsearch_user(settings)
    config = directory / "config"
    if not config.exists():
        shutil.copytree(home / "config", config)
    (config / "elasticsearch.yml").write_text(yml)
    for sub in ("data", "logs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    if user:
        _give_to(user, directory)
        home = _reachable_copy(user, home)
        _check_reachable(user, home, directory)
    env = {**os.environ, "ES_JAVA_HOME": str(java_home(settings)), "ES_PATH_CONF": str(config),
           "ES_JAVA_OPTS": f"-Xms{heap_mb}m -Xmx{heap_mb}m"}
    env.pop("JAVA_TOOL_OPTIONS", None)
    with open(directory / "logs" / "startup.log", "ab") as out:
        result = subprocess.run([str(home / "bin" / "elasticsearch"), "-d", "-p", str(pid_file)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                user=user or None, cwd=directory, timeout=settings.services.start_timeout_s)
    if result.returncode != 0:
        raise ServiceError(f"Elasticsearch did not start (exit code {result.returncode}); "
                           f"see {directory / 'logs'}/startup.log: {_last_error(directory / 'logs' / 'startup.log')}")
    pid = _process.read_pid(pid_file)
    if pid is None:
        raise ServiceError(f"Elasticsearch exited right after starting; see {directory / 'logs'}")
    return pid


def elasticsearch_yml(cluster: str, node: str, host: str, port: int, directory: Path, discovery: list[str]) -> str:
    # On loopback with security off: what the embedded default and the local cluster serve, never exposed.
    return "\n".join([
        f"cluster.name: {cluster}", f"node.name: {node}", *discovery,
        f"network.host: {host}", f"http.port: {port}",
        f"path.data: {directory / 'data'}", f"path.logs: {directory / 'logs'}",
        "xpack.security.enabled: false",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "action.destructive_requires_name: false",
        "action.auto_create_index: false",   # every index is created with its mapping, never by a write
        ""])


def _existing_elasticsearch_user(settings: Settings) -> str:
    """The user the node runs as if it exists ('' when we are not root or it is not created yet:
    then no node of ours can be running as it)."""
    if os.geteuid() != 0:
        return ""
    try:
        return pwd.getpwnam(settings.services.elasticsearch_user).pw_name
    except KeyError:
        return ""


def _elasticsearch_user(settings: Settings) -> str:
    """The user to run as: ours when we are root (created if missing), else we ourselves ('')."""
    if os.geteuid() != 0:
        return ""
    name = settings.services.elasticsearch_user
    try:
        pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                 name], capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"cannot create the system user {name!r} Elasticsearch runs as: "
                               f"{result.stderr.strip()}") from None
    return name


def _give_to(user: str, directory: Path) -> None:
    """Hands what we (root) created to ``user``: the folder, its data and logs folders, and the
    config. What the node writes inside data/ and logs/ is its own already, so start-up does not
    walk the data."""
    entry = pwd.getpwnam(user)
    config = directory / "config"
    paths = [directory, directory / "data", directory / "logs", config,
             *(Path(root, name) for root, dirs, files in os.walk(config) for name in dirs + files)]
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _reachable_copy(user: str, home: Path) -> Path:
    """``home`` if ``user`` can run it, else a copy in the system's temp folder that it can (a
    checkout under a private folder, e.g. a CI clone in a mode-700 directory)."""
    if _can(user, "-x", home / "bin" / "elasticsearch"):
        return home
    copy = Path(tempfile.gettempdir()) / f"cinerec-{home.name}"
    if not (copy / "bin" / "elasticsearch").exists():
        shutil.copytree(home, copy, dirs_exist_ok=True)
        for root, _dirs, _files in os.walk(copy):
            os.chmod(root, 0o755)
    return copy


def _can(user: str, test: str, path: Path) -> bool:
    return subprocess.run(["test", test, str(path)], user=user).returncode == 0


def _check_reachable(user: str, home: Path, directory: Path) -> None:
    for path, test in ((home / "bin" / "elasticsearch", "-x"), (directory / "data", "-w")):
        if not _can(user, test, path):
            raise ServiceError(f"user {user!r} cannot reach {path}: every folder above it must be "
                               f"world-searchable (chmod o+x) for Elasticsearch to run as that user")


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    causes = [line for line in lines if "Exception" in line] or lines  # the cause, not the epilogue
    return causes[-1][:300] if causes else "no output"
