"""The served indices: the films, film_lists and users indices of a registered model, built from
its training data and what the streaming job has taken since (``cinerec index``, a canary)."""

from __future__ import annotations

from pathlib import Path

from cinerec.batch.indexing import build_indices, with_streamed
from cinerec.batch.training import prepare
from cinerec.core.settings import Settings
from cinerec.platform.elasticsearch import connect
from cinerec.platform.kafka import privacy_book
from cinerec.platform.registry import Registry


def build_served_indices(settings: Settings, alias: str, *, swap: bool = True) -> dict:
    """Builds the films, film_lists and users indices of the model behind ``alias`` from its data
    (and what the streaming job has taken since); ``swap``: serve them (a canary's are built without)."""
    registry = Registry(settings)
    version = registry.version(alias)
    if version is None:
        raise LookupError(f"{registry.name} has no {alias}: run `cinerec train` and `cinerec promote`")
    artifact = registry.load(alias)
    book = privacy_book(settings.kafka, settings.web.first_user_id)
    frames, prepared = prepare(Path(version.tags["data_path"]), settings, book.erased())
    streamed, trending = _streamed(settings)
    if streamed is not None:
        streamed = streamed[~streamed["user_id"].isin(book.erased())]     # erasures the job has not applied yet
        frames, artifact = with_streamed(frames, artifact, streamed,
                                         (prepared["bayesian_prior_count"], prepared["global_mean"]))
    report = build_indices(connect(settings.elasticsearch), frames, artifact, version=version.version,
                           keep=settings.elasticsearch.keep_versions, film_fields=trending,
                           neighbours_kept=settings.elasticsearch.stored_neighbours, privacy=book.document_fields,
                           swap=swap)
    return {"model": registry.name, "alias": alias, "version": int(version.version),
            "streamed_ratings": 0 if streamed is None else len(streamed), **report}


def _streamed(settings: Settings) -> tuple:
    """(ratings the streaming job has taken, {film: trending fields}) from its checkpoint, or
    (None, None) if it never ran."""
    from cinerec.streaming.stateful import checkpoint_dir, has_state, stored_trending, streamed_ratings

    checkpoint = checkpoint_dir(settings.services.data_dir)
    if not has_state(checkpoint):
        return None, None
    from cinerec.platform.spark import spark_session
    spark = spark_session("cinerec-index")
    return (streamed_ratings(spark, checkpoint),
            stored_trending(spark, checkpoint, settings.streaming.trending_window_s * 1000))
