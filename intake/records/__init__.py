"""Records requests: models, workflow, clocks, services, portal and queue."""
