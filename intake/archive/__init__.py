"""The archive patient index: who the facility holds records for, and where those records are."""
