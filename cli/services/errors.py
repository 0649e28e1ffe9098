class ServiceError(RuntimeError):
    """A service could not be started or is not healthy."""
