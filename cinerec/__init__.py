"""Cinerec: a real-time streaming movie recommender on Kafka, Spark and Elasticsearch.

The packages stand on floors: a module imports its own package and the floors beneath it, never a
package beside or above it. ``FLOORS`` is the one statement of that rule: ``tests/test_imports.py``
checks every import against it and the documentation draws its picture from it
(``docs/architecture.md``)."""

FLOORS = (   # lowest first: (packages, what they are)
    (("core",), "pure rules and data types: events, privacy, settings, fold-in, metrics; no engine"),
    (("platform",), "one client per outside system: Kafka, Elasticsearch, MLflow, Spark, the account database"),
    (("search", "simulator"), "Elasticsearch's documents and queries; the synthetic world and its feeds"),
    (("batch", "streaming", "api"), "training and evaluation; the streaming job; the API and the web app"),
    (("ops",), "assembles the parts: services, the streaming job's start, demo, pipeline, benchmarks"),
    (("cli",), "parses arguments and prints"),
)


def floor_of(package: str) -> int:
    return next(n for n, (packages, _) in enumerate(FLOORS) if package in packages)


def floors_picture() -> str:
    """The floors as text, highest first (the documentation's picture)."""
    width = max(len("  ".join(packages)) for packages, _ in FLOORS)
    return "\n".join(f"{'  '.join(packages):<{width}}   {what}" for packages, what in reversed(FLOORS))
