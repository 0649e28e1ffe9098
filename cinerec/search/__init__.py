"""Elasticsearch side: client and health, mappings, versioned indices and aliases, documents, queries,
privacy (what is held about a user) and the canary's state. Imports ``core`` only."""
