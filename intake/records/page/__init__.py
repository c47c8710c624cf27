"""The records request page: one package, two blueprints (see ``blueprint``).

``staff`` and ``portal`` draw the page for each side and offer the public helpers (load, render,
save a change) the other route modules compose it from.
"""

from intake.records.page import (  # noqa: F401  (each registers its routes)
    consents,
    documents,
    entry,
    fees,
    portal,
    professionals,
    recipient_links,
    staff,
)
from intake.records.page.blueprint import portal_bp, queue_bp

__all__ = ["portal_bp", "queue_bp"]
