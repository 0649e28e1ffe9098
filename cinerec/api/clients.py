"""Elasticsearch and Kafka clients of one app, and its cached reads of films, created on first use."""

from __future__ import annotations

from functools import cached_property

from confluent_kafka import Producer
from flask import current_app

from cinerec.core.settings import Settings
from cinerec.search.cache import ServedFilms
from cinerec.search.client import connect


class Clients:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def es(self):
        return connect(self.settings.elasticsearch)

    @cached_property
    def films(self) -> ServedFilms:
        return ServedFilms(self.es, self.settings.api)

    @cached_property
    def producer(self) -> Producer:
        kafka = self.settings.kafka
        return Producer({**kafka.client_config(), "acks": kafka.acks, "linger.ms": 0,
                         "message.timeout.ms": 5000, "enable.idempotence": kafka.acks == "all"})


def clients() -> Clients:
    return current_app.extensions["cinerec"]
