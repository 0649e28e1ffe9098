"""Elasticsearch side: mappings, versioned indices and aliases, documents, queries, the served
model's catalogue and cache, privacy (what is held about a user) and the canary's state (the client
itself: ``cinerec.platform.elasticsearch``). Its floor: ``cinerec.FLOORS`` (tests/test_imports.py)."""
