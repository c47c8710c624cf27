"""Public pages: the closure notice, the records guide, and the health check."""
