"""Elasticsearch side: client from settings and health (later: mappings, versioned indices, queries)."""
