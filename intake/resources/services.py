"""The resource directory's rules: create, edit, retire, reactivate, mark verified, search.

Plain functions: each checks the actor's permission, changes the row, writes the audit event and
flushes; the view commits once. Entries are public information (not PHI); even so, audit details
name only the fields that changed, never their values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.resources import geo
from intake.resources.models import PAYERS, Resource, ResourceKind

# Entries not checked for this long get a warning: programmes close, numbers change.
STALE_AFTER = timedelta(days=365)
SEARCH_LIMIT = 20
LIST_LIMIT = 200
EDITABLE = ("name", "kind", "phone", "website", "address", "city", "state", "zip", "hours", "payers", "description")
# What a caller can pay with, as the search asks it: "uninsured" is answered by sliding-scale and free
# programmes; every other choice is the payer code itself.
PAYER_FILTERS = {"medi_cal": ("medi_cal",), "medicare": ("medicare",), "private": ("private",),
                 "tricare": ("tricare",), "uninsured": ("sliding_scale", "free"), "self_pay": ("self_pay",)}
NEAR_CANDIDATES = 2000  # a distance search ranks at most this many matching entries (the directory is small)


class NotAllowed(PermissionError):
    """The actor may not change the directory."""


class InvalidResource(ValueError):
    """Data a form let through but the directory refuses; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _require_editor(actor: Any) -> None:
    if not can(actor, Permission.RESOURCES_EDIT):
        raise NotAllowed("resources.edit required")


def _clean(value: Any) -> str | None:
    """Blank optional text becomes NULL, so "not known" is one value."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _payers_code(payers: Iterable[str] | None) -> str:
    chosen = set(payers or ())
    unknown = chosen - set(PAYERS)
    if unknown:
        raise InvalidResource("payers", "unknown payer")
    return ",".join(p for p in PAYERS if p in chosen)  # a stable order, whatever the form sent


def _values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The column values for ``data``, or InvalidResource."""
    name = _clean(data.get("name"))
    if not name:
        raise InvalidResource("name", "a name is required")
    try:
        kind = ResourceKind(data.get("kind") or "")
    except ValueError:
        raise InvalidResource("kind", "unknown kind") from None
    state = _clean(data.get("state"))
    return {
        "name": name,
        "kind": kind,
        "phone": _clean(data.get("phone")),
        "website": _clean(data.get("website")),
        "address": _clean(data.get("address")),
        "city": _clean(data.get("city")),
        "state": state.upper() if state else None,
        "zip": _clean(data.get("zip")),
        "hours": _clean(data.get("hours")),
        "payers": _payers_code(data.get("payers")),
        "description": _clean(data.get("description")),
    }


def create_resource(data: Mapping[str, Any], actor: Any) -> Resource:
    """Add an entry; ``data["verified"]`` true stamps it verified now."""
    _require_editor(actor)
    resource = Resource(**_values(data), active=True)
    verified = bool(data.get("verified"))
    if verified:
        resource.last_verified_at = utcnow()
    db.session.add(resource)
    db.session.flush()
    record("resource.created", actor=actor, object_type="resource", object_id=resource.id,
           details={"verified": verified})
    return resource


def update_resource(resource: Resource, data: Mapping[str, Any], actor: Any) -> list[str]:
    """Apply ``data``; return the names of the fields that changed (empty: nothing written)."""
    _require_editor(actor)
    changed = []
    for field, value in _values(data).items():
        if getattr(resource, field) != value:
            setattr(resource, field, value)
            changed.append(field)
    if data.get("verified"):
        resource.last_verified_at = utcnow()
        changed.append("last_verified_at")
    if changed:
        db.session.flush()
        record("resource.updated", actor=actor, object_type="resource", object_id=resource.id,
               details={"fields": changed})
    return changed


def retire_resource(resource: Resource, actor: Any) -> bool:
    """Take an entry out of search and the list (kept for the calls that referred to it).
    False when it was retired already."""
    return _set_active(resource, False, actor)


def reactivate_resource(resource: Resource, actor: Any) -> bool:
    """Put a retired entry back; False when it was active already."""
    return _set_active(resource, True, actor)


def _set_active(resource: Resource, active: bool, actor: Any) -> bool:
    _require_editor(actor)
    if resource.active == active:
        return False
    resource.active = active
    db.session.flush()
    record("resource.reactivated" if active else "resource.retired", actor=actor, object_type="resource",
           object_id=resource.id)
    return True


def mark_verified(resource: Resource, actor: Any) -> None:
    """Someone confirmed the entry is still right (called the programme, checked its site) today."""
    _require_editor(actor)
    resource.last_verified_at = utcnow()
    db.session.flush()
    record("resource.verified", actor=actor, object_type="resource", object_id=resource.id)


def is_stale(resource: Resource, now: datetime | None = None) -> bool:
    """Never verified, or not for over a year."""
    if resource.last_verified_at is None:
        return True
    return (now or utcnow()) - resource.last_verified_at > STALE_AFTER


def _accepts(payer: str) -> Any:
    """The entry lists one of the payer codes the filter stands for (codes are comma-separated)."""
    column = Resource.payers
    return or_(*(or_(column == code, column.startswith(code + ","), column.endswith("," + code),
                     column.contains("," + code + ",")) for code in PAYER_FILTERS[payer]))


def search_resources(query: str, kind: ResourceKind | None = None, limit: int = SEARCH_LIMIT,
                     include_retired: bool = False, payer: str | None = None) -> list[Resource]:
    """Entries whose name, city or ZIP contains ``query`` (any case; ``%`` and ``_`` are literal),
    of ``kind`` and accepting ``payer`` (a PAYER_FILTERS key) when given, active only unless asked,
    by name. An empty query matches everything (up to ``limit``).

    Case folding happens in SQL with ``lower()``, which on SQLite folds ASCII letters only.
    """
    stmt = select(Resource)
    if payer:
        stmt = stmt.where(_accepts(payer))
    needle = (query or "").strip().lower()
    if needle:
        stmt = stmt.where(or_(
            func.lower(Resource.name).contains(needle, autoescape=True),
            func.lower(Resource.city).contains(needle, autoescape=True),
            Resource.zip.contains(needle, autoescape=True),
        ))
    if kind is not None:
        stmt = stmt.where(Resource.kind == kind)
    if not include_retired:
        stmt = stmt.where(Resource.active.is_(True))
    stmt = stmt.order_by(func.lower(Resource.name), Resource.id).limit(limit)
    return list(db.session.execute(stmt).scalars())


def find_near(query: str, kind: ResourceKind | None, payer: str | None, near_zip: str, within_miles: float | None,
              limit: int, include_retired: bool = False) -> list[tuple[Resource, float | None]]:
    """\"Who takes Medi-Cal near this caller": the search above, ranked by the distance between ZIP code
    centroids (``geo``), nearest first; entries whose ZIP is unknown come last (or are left out when
    ``within_miles`` is given)."""
    origin = geo.zip_point(near_zip)
    rows = search_resources(query, kind, NEAR_CANDIDATES, include_retired, payer)
    ranked = [(r, geo.miles_between(origin, geo.zip_point(r.zip))) for r in rows]
    if within_miles is not None:
        ranked = [(r, d) for r, d in ranked if d is not None and d <= within_miles]
    ranked.sort(key=lambda pair: (pair[1] is None, pair[1] or 0.0, pair[0].name.lower(), pair[0].id))
    return ranked[:limit]


def form_data(resource: Resource) -> dict[str, Any]:
    """An entry's values in the shape the edit form and ``update_resource`` take."""
    data = {field: getattr(resource, field) for field in EDITABLE}
    data["kind"] = resource.kind.value
    data["payers"] = [p for p in resource.payers.split(",") if p]
    return data
