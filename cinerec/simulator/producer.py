"""Rate-controlled publishing of rating events to Kafka, with a JSON-ready summary.

``publish`` takes any iterable of ``Message``: each says when it is due (seconds after the
start), so one loop serves the simulator (due = i / rate) and MovieLens replay (due = event
time / speed). Acknowledgements are counted from the broker's delivery reports.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from confluent_kafka import KafkaException, Producer

from cinerec.core.events import RatingEvent
from cinerec.core.settings import KafkaSettings
from cinerec.platform.kafka import BULK, new_producer

from .malformed import KINDS, malform
from .world import Tastes, activity, pick_films

VALID = "valid"
CHUNK = 1000            # events generated at a time


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    kind: str            # "valid", or the malformed kind
    due_s: float = 0.0   # when to send, seconds after the start


def publish(kafka: KafkaSettings, messages: Iterable[Message], *, topic: str,
            duration_s: float | None = None, progress: Callable[[int], None] | None = None,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Sends ``messages`` (until exhausted or ``duration_s``), waits for every acknowledgement."""
    producer = new_producer(kafka, BULK)
    acked: Counter = Counter()
    failed: Counter = Counter()
    partitions: Counter = Counter()
    errors: Counter = Counter()

    def delivered(kind: str):
        def report(err, msg) -> None:
            if err is None:
                acked[kind] += 1
                partitions[msg.partition()] += 1
            else:
                failed[kind] += 1
                errors[err.str()] += 1
        return report

    reports = {kind: delivered(kind) for kind in (VALID, *KINDS)}
    start = clock()
    attempted = 0
    for message in messages:
        elapsed = clock() - start
        if duration_s is not None and max(elapsed, message.due_s) >= duration_s:
            break
        if message.due_s > elapsed + 0.001:
            sleep(message.due_s - elapsed)
        _produce(producer, topic, message, reports[message.kind])
        attempted += 1
        if attempted % CHUNK == 0:
            producer.poll(0)
            if progress:
                progress(CHUNK)
    sending = clock() - start
    unsent = producer.flush(60)
    seconds = clock() - start
    if progress:
        progress(attempted % CHUNK)
    sent = sum(acked.values())
    return {
        "topic": topic,
        "attempted": attempted,
        "sent": sent,
        "failed": sum(failed.values()) + unsent,
        "valid": acked[VALID],
        "malformed": {"total": sent - acked[VALID], **{k: acked[k] for k in KINDS if acked[k]}},
        "errors": dict(errors),
        "duration_s": round(seconds, 3),
        "achieved_rate": round(sent / seconds, 1) if seconds else 0.0,
        "send_rate": round(attempted / sending, 1) if sending else 0.0,
        "partitions": {str(p): n for p, n in sorted(partitions.items())},
    }


def _produce(producer: Producer, topic: str, message: Message, report) -> None:
    while True:
        try:
            producer.produce(topic, key=message.key, value=message.value, on_delivery=report)
            return
        except BufferError:  # local queue full: let librdkafka drain, then retry
            producer.poll(0.05)
        except KafkaException as err:
            raise RuntimeError(f"cannot publish to {topic}: {err}") from err


def simulated_messages(tastes: Tastes, *, seed: int, rate: float, users: int | None = None,
                       malformed: float = 0.0, count: int | None = None,
                       clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                       source: str = "simulator", sessions: tuple[int, int] = (60, 20)) -> Iterator[Message]:
    """Endless (or ``count``) events drawn from the hidden tastes of the first ``users`` users.

    Users watch in sessions, the way the world's history was made (``simulator.world``): a random
    user picks ``activity`` different films (``sessions`` = (mean, minimum) films per session, the
    world's ratings per user) and rates each; a chunk's sessions are interleaved. So the stream's
    films and ratings follow the champion's training data until tastes drift.
    Exactly ``floor(n * malformed)`` of the first n events are malformed, for every n.
    """
    rng = np.random.default_rng(seed)
    picker = random.Random(seed)
    active = min(users or len(tastes.user_id), len(tastes.user_id))
    sent = 0
    while count is None or sent < count:
        n = CHUNK if count is None else min(CHUNK, count - sent)
        u_idx, m_idx = _sessions(tastes, active, n, sessions, rng)
        ratings = tastes.rate(u_idx, m_idx, rng)
        ids = rng.bytes(16 * n)
        now = clock_ms()
        for j in range(n):
            i = sent + j
            user = int(tastes.user_id[u_idx[j]])
            event = RatingEvent(str(uuid.UUID(bytes=ids[16 * j:16 * j + 16], version=4)), user,
                                int(tastes.movie_id[m_idx[j]]), float(ratings[j]), now, source)
            bad = int((i + 1) * malformed) > int(i * malformed)
            kind = picker.choice(KINDS) if bad else VALID
            value = malform(event.as_dict(), kind, picker) if bad else event.to_json()
            yield Message(str(user).encode(), value, kind, i / rate if rate else 0.0)
        sent += n


def _sessions(tastes: Tastes, active: int, n: int, sessions: tuple[int, int],
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (user index, film index) pairs: whole viewing sessions of random users, shuffled."""
    mean, minimum = sessions
    users, films, total = [], [], 0
    while total < n:
        u = int(rng.integers(0, active))
        count = max(1, int(activity(rng, 1, mean=mean, minimum=minimum, movies=len(tastes.movie_id))[0]))
        users.append(np.full(count, u))
        films.append(pick_films(tastes, u, count, rng))
        total += count
    order = rng.permutation(total)[:n]
    return np.concatenate(users)[order], np.concatenate(films)[order]
