"""Flask API: title queries, recommendations, ratings, onboarding, erasure, metrics.

Not built yet (issue: search and API). Imports ``core`` and ``search`` only.
"""
