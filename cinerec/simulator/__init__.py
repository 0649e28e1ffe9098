"""Synthetic world, rate-controlled event producer, MovieLens replay. Imports only ``core``."""
