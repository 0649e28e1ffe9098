"""Settings defaults and model configurations, shipped with the package (``core.settings`` reads them)."""
