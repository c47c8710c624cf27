"""Running the app: job locks and runs, alerts, metrics and logs (the operator's side of intake)."""
