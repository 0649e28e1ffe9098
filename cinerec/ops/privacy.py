"""The audit of a person's data across every store (`cinerec privacy audit`, the erasure tests):
per store what still names the user, and what may lawfully stay (``retained``)."""

from __future__ import annotations

import json
from pathlib import Path

from cinerec.core.settings import Settings


def retained(settings: Settings) -> dict[str, str]:
    """What an audit may still find after an erasure, and why that is allowed."""
    kafka = settings.kafka
    return {f"kafka {kafka.ratings_topic}": f"raw events stay on the topic until kafka.retention_days "
                                           f"({kafka.retention_days}); the job and replay skip them",
            f"kafka {kafka.dlq_topic}": f"dead letters stay until kafka.retention_days ({kafka.retention_days})",
            f"kafka {kafka.privacy_topic}": "the erasure record itself (proof of erasure; the topic is compacted)",
            "champion model": "trained before the erasure: `cinerec privacy status` flags it until a retrain"}


def audit(settings: Settings, user_id: int, email: str | None = None) -> dict:
    """Per store, what names the user: rows, documents, state entries, events, model rows, log lines."""
    from cinerec.platform.accounts import Accounts
    from cinerec.platform.elasticsearch import connect
    from cinerec.search.privacy import count_about

    found: dict[str, int] = {}
    for table, n in Accounts(settings).find(user_id, email).items():
        found[f"database {table}"] = n
    for index, n in count_about(connect(settings.elasticsearch), user_id).items():
        found[f"elasticsearch {index}"] = n
    found.update(_in_state(settings, user_id))
    found.update(_in_kafka(settings, user_id))
    found["training features"] = _in_features(settings, user_id)
    found["champion model"] = int(user_id in champion_users(settings))
    if email:
        found["logs (e-mail)"] = _in_logs(settings, email)
    allowed = retained(settings)
    held = {store: n for store, n in found.items() if n and store not in allowed}
    kept = {store: {"found": n, "why": allowed[store]} for store, n in found.items() if n and store in allowed}
    return {"user_id": user_id, "email": email, "found": found, "retained": kept, "clean": not held,
            "still_held": held}


def champion_users(settings: Settings) -> set[int]:
    from cinerec.platform.registry import CHAMPION, Registry

    registry = Registry(settings)
    if registry.version(CHAMPION) is None:
        return set()
    return set(map(int, registry.load(CHAMPION).user_ids))


def _in_state(settings: Settings, user_id: int) -> dict[str, int]:
    """The user's ratings in the streaming job's state: under the user, and under the films."""
    from cinerec.streaming.stateful import checkpoint_dir, has_state, held_in_state

    checkpoint = checkpoint_dir(settings.services.data_dir)
    if not has_state(checkpoint):
        return {"streaming state (user)": 0, "streaming state (films)": 0}
    from cinerec.platform.spark import spark_session

    user, films = held_in_state(spark_session("cinerec-privacy-audit"), checkpoint, user_id)
    return {"streaming state (user)": user, "streaming state (films)": films}


def _in_kafka(settings: Settings, user_id: int) -> dict[str, int]:
    """Messages on each topic that name the user: key = user id (ratings, privacy) or, for dead
    letters, the original event's user id."""
    from cinerec.platform.kafka import read_topic

    kafka, key = settings.kafka, str(user_id).encode()

    def dead_letter_about(message) -> bool:
        try:
            return json.loads(json.loads(message.value())["original"]).get("user_id") == user_id
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
    return {f"kafka {kafka.ratings_topic}": sum(m.key() == key for m in read_topic(kafka, kafka.ratings_topic)),
            f"kafka {kafka.dlq_topic}": sum(map(dead_letter_about, read_topic(kafka, kafka.dlq_topic))),
            f"kafka {kafka.privacy_topic}": sum(m.key() == key for m in read_topic(kafka, kafka.privacy_topic))}


def _in_features(settings: Settings, user_id: int) -> int:
    from cinerec.core.privacy import rows_in_features

    return rows_in_features(Path(settings.services.data_dir) / "features", user_id)


def _in_logs(settings: Settings, email: str) -> int:
    logs = Path(settings.services.data_dir)
    return sum(path.read_text(errors="replace").count(email) for path in logs.rglob("*.log") if path.is_file())
