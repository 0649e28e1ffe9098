"""Errors every component can raise and the CLI maps to an exit code."""


class ServiceError(RuntimeError):
    """A service (Kafka, Elasticsearch, Kibana) could not be started, reached or is not healthy."""
