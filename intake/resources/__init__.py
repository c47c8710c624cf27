"""The resource directory: treatment programs and services operators refer callers to."""
