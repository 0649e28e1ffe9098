"""Infrastructure faults are waited out, data faults are dead-lettered.

A micro-batch's writes are idempotent (absolute values under deterministic ids), so a step that
failed because Elasticsearch or Kafka was away is simply run again, with exponential backoff,
until it succeeds or the job is stopped. What counts as such a fault (``is_transient``): no
connection, a timeout, HTTP 429/502/503/504 (a node restarting, shards recovering), Kafka not
acknowledging. Anything else is about the data and is not retried here.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaException
from elasticsearch import exceptions as es_errors

from . import metrics

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


class Unavailable(RuntimeError):
    """A store did not take a write for a reason that is not the data's (see ``is_transient``)."""


def is_transient(err: BaseException) -> bool:
    if isinstance(err, (Unavailable, KafkaException, BufferError, es_errors.ConnectionError,
                        es_errors.ConnectionTimeout)):
        return True
    return isinstance(err, es_errors.ApiError) and err.meta.status in TRANSIENT_STATUS


def retrying(step: Callable[[], T], *, what: str, stop: threading.Event, first_delay_s: float = 0.5,
             max_delay_s: float = 10.0) -> T:
    """``step()``, run again after each transient failure (waiting 0.5 s, 1 s, … up to
    ``max_delay_s``) until it succeeds; re-raises at once on another error or once ``stop`` is set."""
    delay, failures, started = first_delay_s, 0, time.monotonic()
    while True:
        try:
            result = step()
        except Exception as err:
            if not is_transient(err) or stop.is_set():
                raise
            failures += 1
            metrics.RETRIES.labels(what).inc()
            print(f"{what}: {type(err).__name__}: {str(err)[:160]}; retry {failures} in {delay:g} s",
                  file=sys.stderr, flush=True)
            if stop.wait(delay):
                raise
            delay = min(delay * 2, max_delay_s)
            continue
        if failures:
            print(f"{what}: succeeded after {failures} retries ({time.monotonic() - started:.1f} s)",
                  file=sys.stderr, flush=True)
        return result
