"""The HTTP layer: dependencies, errors, middleware and the versioned routers."""
