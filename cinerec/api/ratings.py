"""The one way a rating enters the system from the web side: validated against the event
contract and published to Kafka, acknowledged before the caller answers. ``POST /ratings``
(services, with an API key) and the web app (people, with a session) both use it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import KafkaException
from flask import current_app

from cinerec.core.events import InvalidEvent, RatingEvent, validate_event

from .clients import clients
from .errors import ApiError


def publish_ratings(user_id: int, ratings: Sequence[tuple[object, object]]) -> list[RatingEvent]:
    """(movie id, rating) pairs of one user -> events on the ratings topic; all or an error.
    The event id, time and source are the server's. 400 for an invalid rating, 503 (a
    ``KafkaException``) when the broker did not acknowledge them within 5 s."""
    now = int(time.time() * 1000)
    events = []
    for movie_id, rating in ratings:
        try:
            events.append(validate_event({"event_id": str(uuid.uuid4()), "user_id": user_id, "movie_id": movie_id,
                                          "rating": rating, "ts": now, "source": "api"}))
        except InvalidEvent as err:
            raise ApiError(400, f"invalid rating: {err.detail}", reason=err.reason) from None
    producer, errors = clients().producer, []
    topic = current_app.config["CINEREC"].kafka.ratings_topic
    for event in events:
        producer.produce(topic, key=event.key, value=event.to_json(), on_delivery=lambda err, msg: errors.append(err))
    left = producer.flush(5)
    failed = [e for e in errors if e is not None]
    if left or failed or len(errors) < len(events):
        raise KafkaException(failed[0] if failed else "not acknowledged within 5 s")
    return events
