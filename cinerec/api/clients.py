"""Elasticsearch and Kafka clients of one app, and its cached reads of films, created on first use."""

from __future__ import annotations

from functools import cached_property

from confluent_kafka import Producer
from flask import current_app

from cinerec.core.settings import Settings
from cinerec.platform.elasticsearch import connect
from cinerec.platform.kafka import new_producer
from cinerec.search.cache import ServedFilms


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
        return new_producer(kafka, {"linger.ms": 0, "message.timeout.ms": 5000})


def clients() -> Clients:
    return current_app.extensions["cinerec"]
