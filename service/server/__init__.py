"""The HTTP layer: the only place that turns domain errors into HTTP responses."""
