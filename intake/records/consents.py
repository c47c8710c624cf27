"""Records requests: consents (being built; see the Step 5 issue)."""

from __future__ import annotations

from typing import Any


def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """What the request's page (the requester's when ``staff`` is false, the queue's otherwise)
    needs from this module, as template variables."""
    return {}


def release_problem(req: Any) -> str | None:
    """Why the records may not be released under this request's consent (a problem code), or None."""
    return None
