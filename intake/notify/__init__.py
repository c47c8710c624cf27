"""E-mail: the outbox table, queued in the same transaction as the change that causes it, and the sender."""
