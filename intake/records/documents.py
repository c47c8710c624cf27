"""Records requests: documents (being built; see the Step 5 issue)."""

from __future__ import annotations

from typing import Any


def page_context(req: Any, viewer: Any, staff: bool) -> dict[str, Any]:
    """What the request's page (the requester's when ``staff`` is false, the queue's otherwise)
    needs from this module, as template variables."""
    return {}
