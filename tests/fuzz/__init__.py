"""Fuzzing: Hypothesis drives every form and query-string filter the app serves (``make fuzz``)."""
