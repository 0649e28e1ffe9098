"""Typed settings: defaults in ``config/cinerec.toml``, overridden by ``CINEREC_<SECTION>__<KEY>``.

Loaded once at the entry point (``load_settings``) and passed down. A bad value fails with
one line naming the key, the environment variable behind it and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "CINEREC_"
PACKAGE_DIR = Path(__file__).resolve().parent.parent          # cinerec/
PROJECT_ROOT = PACKAGE_DIR.parent                             # the checkout: deployment/, kibana/, .engines/
DEFAULT_TOML = PACKAGE_DIR / "config" / "cinerec.toml"
SECRET_MASK = "********"


class SettingsError(ValueError):
    """A setting is missing, unknown or has a value that is not allowed."""


def setting(help: str, *, choices: tuple = (), min: float | None = None,
            max: float | None = None, secret: bool = False) -> Any:
    """Declare a settings field: its docstring and the values it allows."""
    return field(metadata={"help": help, "choices": choices, "min": min, "max": max,
                           "secret": secret})


@dataclass(frozen=True)
class ServicesSettings:
    mode: str = setting("'embedded' starts Kafka and Elasticsearch locally (from engines_dir); "
                        "'external' only checks the endpoints.", choices=("embedded", "external"))
    data_dir: Path = setting("Directory for service data, datasets, the synthetic world and models.")
    start_timeout_s: float = setting("Seconds `services up` waits for both services to be healthy.",
                                     min=1)
    engines_dir: Path = setting("Where `make install` put the engines fetched from Maven Central "
                                "(deployment/engines/pom.xml); relative paths are from the project root.")
    java_home: str = setting("JDK the engines run on (empty: JAVA_HOME, else the java on PATH); Java 17+.")
    kafka_heap_mb: int = setting("Heap of the embedded Kafka broker's JVM, MiB.", min=128)
    elasticsearch_heap_mb: int = setting("Heap of the embedded Elasticsearch node's JVM, MiB.", min=256)
    elasticsearch_user: str = setting("Unprivileged system user the embedded Elasticsearch runs as when "
                                      "`services up` runs as root (created if missing).")

    def engines_path(self) -> Path:
        """``engines_dir`` made absolute (relative paths are from the project root)."""
        return self.engines_dir if self.engines_dir.is_absolute() else PROJECT_ROOT / self.engines_dir


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = setting("Kafka brokers, comma-separated host:port.")
    ratings_topic: str = setting("Topic of rating events (key = user id).")
    dlq_topic: str = setting("Dead-letter topic for events that fail validation.")
    feedback_topic: str = setting("Topic of feedback events: impressions and clicks (core.feedback; key = user id).")
    privacy_topic: str = setting("Compacted topic of privacy events (consent, erasure; key = user id), "
                                 "kept forever (core.privacy).")
    retention_days: int = setting("How long the ratings and dead-letter topics keep events (retention.ms): "
                                  "an erased person's events leave Kafka within this time; the job and "
                                  "replay skip them meanwhile.", min=1, max=3650)
    health_topic: str = setting("Topic used for the produce/consume health round trip.")
    partitions: int = setting("Partitions of the ratings topic when it is created.", min=1, max=1024)
    replication_factor: int = setting("Replication factor of created topics.", min=1, max=16)
    acks: str = setting("Producer acknowledgement level.", choices=("0", "1", "all"))
    linger_ms: int = setting("Producer batching delay in milliseconds.", min=0, max=10_000)
    security_protocol: str = setting("Kafka security protocol.",
                                     choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    sasl_mechanism: str = setting("SASL mechanism (empty: none).",
                                  choices=("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    sasl_username: str = setting("SASL user name.")
    sasl_password: str = setting("SASL password.", secret=True)

    def client_config(self) -> dict[str, str | int]:
        """librdkafka configuration shared by every producer, consumer and admin client."""
        # librdkafka would also log every failed connection attempt to stderr; failures reach
        # us as exceptions and delivery reports instead, so its own log is kept to critical.
        config: dict[str, str | int] = {"bootstrap.servers": self.bootstrap_servers,
                                        "security.protocol": self.security_protocol, "log_level": 2}
        if self.sasl_mechanism:
            config.update({"sasl.mechanism": self.sasl_mechanism,
                           "sasl.username": self.sasl_username,
                           "sasl.password": self.sasl_password})
        return config


@dataclass(frozen=True)
class ElasticsearchSettings:
    url: str = setting("Elasticsearch 8 endpoint, http(s)://host:port; several nodes comma-separated.")
    username: str = setting("Basic-auth user name (empty: no auth).")
    password: str = setting("Basic-auth password.", secret=True)
    request_timeout_s: float = setting("Per-request timeout in seconds.", min=0.1)
    keep_versions: int = setting("Versions of each index kept after an alias swap (the live one included).",
                                 min=1, max=100)
    stored_neighbours: int = setting("Films in each film's stored lists (also watched, similar): the most those "
                                     "routes return.", min=1, max=1000)


@dataclass(frozen=True)
class SimulatorSettings:
    seed: int = setting("Seed of the synthetic world and of simulated events.")
    users: int = setting("Users in the synthetic world.", min=1)
    movies: int = setting("Films in the synthetic catalog.", min=10)
    mean_ratings_per_user: int = setting("Mean ratings per synthetic user (long-tailed).", min=1)
    min_ratings_per_user: int = setting("Fewest ratings a synthetic user has.", min=1)
    latent_dim: int = setting("Dimension of the hidden tastes.", min=1, max=256)
    rate: float = setting("Events per second `cinerec simulate` publishes (0: as fast as possible).",
                          min=0)


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str = setting("MLflow tracking URI; empty: SQLite under the data directory.")
    experiment: str = setting("MLflow experiment that training and tuning runs go to.")
    registered_model: str = setting("Registered model name; aliases champion and challenger.")
    promotion_metric: str = setting("Held-out metric a challenger must beat the champion on.",
                                    choices=("ndcg", "precision", "recall", "map"))
    promotion_margin: float = setting("How much higher the challenger's metric must be.", min=0)


@dataclass(frozen=True)
class ApiSettings:
    host: str = setting("Address `cinerec serve` binds.")
    port: int = setting("Port `cinerec serve` listens on.", min=1, max=65535)
    workers: int = setting("gunicorn worker processes.", min=1, max=64)
    threads: int = setting("Threads per gunicorn worker (gthread).", min=1, max=64)
    worker_class: str = setting("gunicorn worker class: gthread (docs/benchmarks.md: it beat sync and gevent "
                                "on every route here) or sync.", choices=("gthread", "sync"))
    default_k: int = setting("Results per list when the request gives no k.", min=1, max=1000)
    max_k: int = setting("Largest k a request may ask for.", min=1, max=1000)
    api_keys: str = setting("Comma-separated keys that may write (POST /ratings, header X-API-Key); one per "
                            "client service. Empty: writes are refused.", secret=True)
    write_rate_per_s: float = setting("Writes per second one key may send (token bucket, per worker process); "
                                      "faster gets 429. 0: no limit.", min=0)
    write_burst: int = setting("Writes one key may send at once before write_rate_per_s applies.", min=1)
    max_body_bytes: int = setting("Largest request body; larger gets 413.", min=64)
    max_query_bytes: int = setting("Longest query string; longer gets 414.", min=64)
    cache_entries: int = setting("Entries each of the API's in-process caches keeps (film statistics, stored "
                                 "lists, kNN hits, title searches; search/cache.py); 0: no caching.", min=0)
    stats_ttl_s: float = setting("Seconds a film's statistics are reused by one API process (film_stats is "
                                 "searchable 1 s after a write anyway).", min=0)
    lists_ttl_s: float = setting("Seconds a film's stored \"also watched\" list is reused by one API process "
                                 "(no longer than streaming.also_watched_refresh_s, how often the job re-scores it).",
                                 min=0)
    alias_check_s: float = setting("Seconds between two checks of which films version the alias names (a moved "
                                   "alias reloads the in-process title map).", min=0)

    def keys(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())


@dataclass(frozen=True)
class WebSettings:
    database_url: str = setting("SQLAlchemy URL of the accounts database (empty: SQLite at <data_dir>/accounts.db; "
                                "production: postgresql+psycopg://user:pass@host/db).", secret=True)
    secret_key: str = setting("Key that signs the web session cookies (empty: one generated and kept in "
                              "<data_dir>/web-secret, shared by the API's workers).", secret=True)
    first_user_id: int = setting("Recommender user id of the first account; later accounts count up. Above "
                                 "every MovieLens and simulator id, so they never collide.", min=1, max=2**31 - 1)
    picks: int = setting("Films a new account picks before its first recommendations.", min=1, max=20)
    pick_rating: float = setting("The rating a pick is given (a pick means 'I like this').", min=0.5, max=5.0)


@dataclass(frozen=True)
class StreamingSettings:
    trigger_ms: int = setting("Micro-batch interval of `cinerec stream` in milliseconds (0: the next batch "
                              "starts as soon as the previous one ends, as long as Kafka has records).", min=0)
    max_offsets_per_trigger: int = setting("Most records per micro-batch (0: no limit); bounds a catch-up "
                                           "batch after downtime.", min=0)
    metrics_port: int = setting("Port of the job's Prometheus /metrics (0: off).", min=0, max=65535)
    nice: int = setting("CPU niceness `cinerec stream` runs at (0-19): above 0, on a machine it shares with the "
                        "API, a request gets a core before a batch does (docs/benchmarks.md).", min=0, max=19)
    stall_s: int = setting("Seconds a micro-batch may run inside Spark (not counting the driver's writes) before "
                           "the job calls it stalled and restarts the query from its checkpoint.", min=10)
    state_buckets: int = setting("Hash buckets per kind (users, films) of the keyed state: Spark groups "
                                 "per micro-batch, each with its own map of entities; a few per state "
                                 "partition (fixed for the life of a checkpoint).", min=1)
    spark_master: str = setting("Spark master of `cinerec stream`: local[N] (in the job's process), or "
                                "spark://host:port of a standalone cluster (the checkpoint then lives under "
                                "services.data_dir, which the workers must share).")
    state_partitions: int = setting("Spark partitions of the keyed state: about the cores the job has "
                                    "(fixed for the life of a checkpoint).", min=1)
    model_check_s: float = setting("How often the job checks the registry for a new champion, seconds.", min=0)
    refold_all: bool = setting("true: on a new champion, re-fold every user at once from the job's state; "
                               "false: each user when they next rate.")
    trending_window_s: int = setting("Event-time window of the films' trending count, seconds.", min=60)
    lateness_s: int = setting("Watermark: how late an event may arrive and still count as trending, seconds.",
                              min=0)
    also_watched_refresh_s: float = setting("How often the job re-scores the stored \"also watched\" lists of "
                                            "the films rated since, seconds (0: only at `cinerec index`).", min=0)
    trending_decay_s: float = setting("How often the job re-counts the trending of films whose window moved "
                                      "on without new ratings, seconds (0: only when a film is rated).", min=0)


@dataclass(frozen=True)
class OpsSettings:
    dagster_port: int = setting("Port of the Dagster web UI `cinerec demo` starts (the scheduler's runs, "
                                "sensor ticks, re-execution from a failed step).", min=1, max=65535)
    retrain_cron: str = setting("Cron schedule of the retraining pipeline (Dagster's daemon, UTC).")
    new_data_share: float = setting("The new_data sensor starts a retraining when the ratings indexed since the "
                                    "last retraining's extract reach this share of the champion's data.",
                                    min=0.001)
    new_data_check_s: int = setting("Seconds between two ticks of the new_data sensor.", min=5)
    canary_look_s: int = setting("Seconds between two looks of the canary sensor while a canary is open (each "
                                 "look promotes, aborts or waits: core.canary.decide).", min=5)
    alert_email_to: str = setting("Where Alertmanager e-mails every alert (comma-separated; empty: no e-mail "
                                  "receiver).")
    alert_email_from: str = setting("Sender address of the alert e-mails.")
    smtp_host: str = setting("SMTP server (host:port) that sends the alert e-mails.")
    smtp_username: str = setting("SMTP user (empty: no authentication).")
    smtp_password: str = setting("SMTP password (handed to Alertmanager in a file readable only by it).",
                                 secret=True)
    slack_webhook_url: str = setting("Slack (or Slack-compatible) incoming-webhook URL every alert is posted to "
                                     "(empty: none); handed to Alertmanager in a file, never in its config.",
                                     secret=True)


@dataclass(frozen=True)
class Settings:
    services: ServicesSettings
    kafka: KafkaSettings
    elasticsearch: ElasticsearchSettings
    simulator: SimulatorSettings
    mlflow: MlflowSettings
    api: ApiSettings
    web: WebSettings
    streaming: StreamingSettings
    ops: OpsSettings

    def replace(self, **dotted: Any) -> Settings:
        """A copy with ``section__key=value`` overrides, validated like any other source."""
        raw = self.as_dict(mask_secrets=False)
        for name, value in dotted.items():
            section, key = name.split("__", 1)
            raw.setdefault(section, {})[key] = value
        return _build(raw, source="override")

    def as_dict(self, *, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            out[section.name] = {
                f.name: (SECRET_MASK if mask_secrets and f.metadata["secret"] and getattr(values, f.name)
                         else getattr(values, f.name))
                for f in dataclasses.fields(values)}
        return out


def as_env(settings: Settings) -> dict[str, str]:
    """The settings as ``CINEREC_<SECTION>__<KEY>`` variables: a child process gets exactly these."""
    return {env_var(section, key): str(value) for section, keys in settings.as_dict(mask_secrets=False).items()
            for key, value in keys.items()}


def env_var(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def load_settings(toml_path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults from TOML, then ``CINEREC_<SECTION>__<KEY>`` environment overrides."""
    path = Path(toml_path or os.environ.get("CINEREC_CONFIG") or DEFAULT_TOML)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"settings file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"settings file {path} is not valid TOML: {err}") from None
    env = os.environ if env is None else env
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "CINEREC_CONFIG":
            continue
        section, key = name[len(ENV_PREFIX):].lower().split("__", 1)
        if section not in _sections() or key not in _sections()[section]:
            raise SettingsError(f"unknown setting {name}: no key {section}.{key}")
        raw.setdefault(section, {})[key] = value
    return _build(raw, source=str(path))


SECTIONS: dict[str, type] = {"services": ServicesSettings, "kafka": KafkaSettings,
                             "elasticsearch": ElasticsearchSettings, "simulator": SimulatorSettings,
                             "mlflow": MlflowSettings, "api": ApiSettings, "web": WebSettings,
                             "streaming": StreamingSettings, "ops": OpsSettings}


def _sections() -> dict[str, dict[str, dataclasses.Field]]:
    return {name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()}


def _build(raw: dict[str, Any], *, source: str) -> Settings:
    sections = _sections()
    for section, values in raw.items():
        if section not in sections:
            raise SettingsError(f"unknown settings section [{section}] in {source}")
        for key in values:
            if key not in sections[section]:
                raise SettingsError(f"unknown setting {section}.{key} in {source}")
    built = {}
    for section, fields in sections.items():
        values = raw.get(section, {})
        parsed = {}
        for key, f in fields.items():
            if key not in values:
                raise SettingsError(f"missing setting {section}.{key} "
                                    f"(set it in {source} or {env_var(section, key)})")
            parsed[key] = _coerce(section, key, f, values[key])
        built[section] = SECTIONS[section](**parsed)
    return Settings(**built)


def _coerce(section: str, key: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.type
    assert isinstance(kind, str)  # this module uses postponed annotations
    meta = f.metadata
    shown = SECRET_MASK if meta["secret"] else repr(value)
    where = f"{section}.{key}={shown} (env {env_var(section, key)})"
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out: Any = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
        elif kind == "bool":
            out = _boolean(value)
        elif kind == "Path":
            out = Path(str(value))
        else:
            out = str(value)
    except (TypeError, ValueError):
        expected = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(kind, "a string")
        raise SettingsError(f"invalid setting {where}: expected {expected}") from None
    if meta["choices"] and out not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        raise SettingsError(f"invalid setting {where}: allowed values are {allowed}")
    if meta["min"] is not None and out < meta["min"]:
        raise SettingsError(f"invalid setting {where}: must be >= {meta['min']:g}")
    if meta["max"] is not None and out > meta["max"]:
        raise SettingsError(f"invalid setting {where}: must be <= {meta['max']:g}")
    return out


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


def describe() -> list[tuple[str, str, str]]:
    """(dotted key, environment variable, help) for every setting, for ``--help`` texts and docs."""
    return [(f"{s}.{k}", env_var(s, k), f.metadata["help"])
            for s, fields in _sections().items() for k, f in fields.items()]
