"""The Elasticsearch 8 client, built from settings, and its health check."""

from __future__ import annotations

from elasticsearch import Elasticsearch, OrjsonSerializer
from elasticsearch import exceptions as es_errors

from cinerec.core.settings import ElasticsearchSettings


def connect(settings: ElasticsearchSettings) -> Elasticsearch:
    """One client over every node of ``url`` (comma-separated): a node that stops answering is
    set aside and the request retried on another. orjson (de)serialises the requests: several
    times faster than json on vectors and lists."""
    auth = (settings.username, settings.password) if settings.username else None
    return Elasticsearch([url.strip() for url in settings.url.split(",")], basic_auth=auth,
                         request_timeout=settings.request_timeout_s, retry_on_timeout=True, max_retries=2,
                         serializer=OrjsonSerializer())


def get_source(es: Elasticsearch, index: str, doc_id: str, **params) -> dict | None:
    """A document's ``_source`` by id, None when the document is missing (a missing index still
    raises). Cheaper than ``es.options(ignore_status=404)``, which builds a client per call."""
    try:
        return es.get(index=index, id=doc_id, **params)["_source"]
    except es_errors.NotFoundError as err:
        if isinstance(err.body, dict) and err.body.get("found") is False:
            return None
        raise


def cluster_health(settings: ElasticsearchSettings, client: Elasticsearch | None = None) -> dict:
    """{"healthy", "status", "version"} from a real cluster-health call; never raises.
    Pass the caller's ``client`` to reuse its connection pool (the API's /health does)."""
    try:
        client = client or connect(settings)
        health = client.options(request_timeout=settings.request_timeout_s).cluster.health()
        # GET / (client.info) is not served by the integ-test distribution: ask the node itself.
        nodes = client.nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")["nodes"]
        version = next(iter(nodes.values()))["version"]
    except (es_errors.ConnectionError, es_errors.TransportError, es_errors.ApiError) as err:
        return {"healthy": False, "error": _one_line(err)}
    return {"healthy": health["status"] in ("green", "yellow"), "status": health["status"],
            "version": version}


def _one_line(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
