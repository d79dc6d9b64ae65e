"""ASGI middleware: request context, body limit, rate limit and read access, outermost first."""
