"""The audit trail: an append-only, hash-chained log of who did what to which object."""
