"""The resource directory: everyone on staff searches it; admins add, edit, retire and verify.

Authorization comes first (the decorator), then the lookup, so an unknown id is a 404 only to
those allowed to ask. Each change goes through a service that writes the audit event; the view
commits once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from intake.extensions import db
from intake.permissions import Permission, can, require
from intake.resources import services
from intake.resources.forms import ResourceForm, SearchForm
from intake.resources.labels import KIND_LABELS, PAYER_LABELS
from intake.resources.models import Resource, ResourceKind

bp = Blueprint("resources", __name__, url_prefix="/resources")

MAX_ID = 2**31 - 1
MIN_QUERY = 2  # the picker asks from the second character on; one letter matches half the directory


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "kind_label": lambda kind: KIND_LABELS[ResourceKind(kind)],
        "payer_labels": lambda code: [PAYER_LABELS[p] for p in (code or "").split(",") if p in PAYER_LABELS],
        "verification_stale": services.is_stale,
        "distance_label": distance_label,
        # Only web links become links, whatever found its way into the column.
        "web_link": lambda url: url if url and url.lower().startswith(("https://", "http://")) else None,
    }


def _actor() -> Any:
    return current_user._get_current_object()


def _load(resource_id: int) -> Resource:
    return db.get_or_404(Resource, resource_id)


def _payer(form: SearchForm) -> str | None:
    return (form.payer.data or "").strip() or None


def _within(form: SearchForm) -> float | None:
    return float(form.within.data) if form.within.data else None


def _search(form: SearchForm, limit: int, include_retired: bool = False) -> list[tuple[Resource, float | None]]:
    """Matching entries with their distance from the caller's ZIP (None without one), nearest first
    when a ZIP is given, else by name."""
    near = (form.near.data or "").strip()
    if near:
        return services.find_near(form.q.data or "", _kind(form), _payer(form), near, _within(form), limit,
                                  include_retired)
    return [(r, None) for r in services.search_resources(form.q.data or "", _kind(form), limit=limit,
                                                         include_retired=include_retired, payer=_payer(form))]


def distance_label(miles: float | None) -> str:
    if miles is None:
        return ""
    return _("%(n)s mi", n=f"{miles:.0f}" if miles >= 10 else f"{miles:.1f}")


def _kind(form: SearchForm) -> ResourceKind | None:
    # The form's Optional() lets a blank (spaces, a line break) through as "any kind", so read it so.
    kind = (form.kind.data or "").strip()
    return ResourceKind(kind) if kind else None


@bp.route("/")
@require(Permission.RESOURCES_USE)
def index() -> str | tuple[str, int]:
    """The directory, searchable by name, city or ZIP (``?q=``) and kind (``?kind=``); up to 200 rows.
    Admins may add ``?include_retired=1``."""
    form = SearchForm(request.args)
    include_retired = can(current_user, Permission.RESOURCES_EDIT) and request.args.get("include_retired") == "1"
    if not form.validate():
        return render_template("resources/index.html", form=form, resources=[], more=False,
                               include_retired=include_retired, near=None), 400
    rows = _search(form, services.LIST_LIMIT + 1, include_retired)
    return render_template("resources/index.html", form=form, resources=rows[:services.LIST_LIMIT],
                           more=len(rows) > services.LIST_LIMIT, include_retired=include_retired,
                           near=form.near.data or None)


@bp.route("/search.json")
@require(Permission.RESOURCES_USE)
def search_json() -> Response | tuple[Response, int]:
    """Search-as-you-type for the call form: ``{"results": [...]}``, at most 20, active entries only.

    Contract (the call form's picker relies on it): each result has id, name, kind, kind_label,
    city, phone, hours, payers (labels), distance_miles and distance_label (with ``?near=ZIP``, else
    null and "") and last_verified ("YYYY-MM-DD" or null). Fewer than 2 characters: no results.
    ``payer``, ``near`` and ``within`` filter as on the directory page.
    """
    form = SearchForm(request.args)
    if not form.validate():
        return jsonify(results=[], errors={name: [str(e) for e in errs] for name, errs in form.errors.items()}), 400
    query = form.q.data or ""
    if len(query) < MIN_QUERY and not (form.near.data or form.payer.data):
        return jsonify(results=[])
    rows = _search(form, services.SEARCH_LIMIT)
    return jsonify(results=[{
        "id": r.id,
        "name": r.name,
        "kind": r.kind.value,
        "kind_label": str(KIND_LABELS[r.kind]),
        "city": r.city,
        "phone": r.phone,
        "hours": r.hours,
        "payers": [str(PAYER_LABELS[p]) for p in r.payers.split(",") if p in PAYER_LABELS],
        "distance_miles": None if miles is None else round(miles, 1),
        "distance_label": distance_label(miles),
        "last_verified": r.last_verified_at.date().isoformat() if r.last_verified_at else None,
    } for r, miles in rows])


@bp.route("/<int(max=2147483647):resource_id>")
@require(Permission.RESOURCES_USE)
def detail(resource_id: int) -> str:
    """One entry, retired or not (old calls may still refer to it)."""
    return render_template("resources/detail.html", resource=_load(resource_id))


@bp.route("/new", methods=["GET", "POST"])
@require(Permission.RESOURCES_EDIT)
def create() -> Response | str | tuple[str, int]:
    """Add an entry."""
    form = ResourceForm()
    if form.validate_on_submit():
        try:
            resource = services.create_resource(form.data, _actor())
        except services.InvalidResource as exc:
            getattr(form, exc.field).errors.append(_("This value is not accepted."))
        else:
            db.session.commit()
            flash(_("Resource added."), "success")
            return redirect(url_for("resources.detail", resource_id=resource.id))
    status = 400 if request.method == "POST" else 200
    return render_template("resources/form.html", form=form, resource=None), status


@bp.route("/<int(max=2147483647):resource_id>/edit", methods=["GET", "POST"])
@require(Permission.RESOURCES_EDIT)
def edit(resource_id: int) -> Response | str | tuple[str, int]:
    """Change an entry; ticking "checked today" also marks it verified."""
    resource = _load(resource_id)
    form = ResourceForm(data=services.form_data(resource) if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            changed = services.update_resource(resource, form.data, _actor())
        except services.InvalidResource as exc:  # raised before anything changed
            getattr(form, exc.field).errors.append(_("This value is not accepted."))
        else:
            db.session.commit()
            flash(_("Resource saved.") if changed else _("Nothing changed."), "success" if changed else "info")
            return redirect(url_for("resources.detail", resource_id=resource.id))
    status = 400 if request.method == "POST" else 200
    return render_template("resources/form.html", form=form, resource=resource), status


def _action(resource_id: int, change: Any, done: str, already: str) -> Response:
    resource = _load(resource_id)
    if change(resource, _actor()) is False:
        flash(already, "info")
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(url_for("resources.detail", resource_id=resource.id))


@bp.route("/<int(max=2147483647):resource_id>/retire", methods=["POST"])
@require(Permission.RESOURCES_EDIT)
def retire(resource_id: int) -> Response:
    """Take an entry out of the list and search (its page stays, for the calls that used it)."""
    return _action(resource_id, services.retire_resource, _("Resource retired. It no longer appears in searches."),
                   _("That resource was already retired."))


@bp.route("/<int(max=2147483647):resource_id>/reactivate", methods=["POST"])
@require(Permission.RESOURCES_EDIT)
def reactivate(resource_id: int) -> Response:
    """Put a retired entry back into the list and search."""
    return _action(resource_id, services.reactivate_resource, _("Resource reactivated."),
                   _("That resource was already active."))


@bp.route("/<int(max=2147483647):resource_id>/verified", methods=["POST"])
@require(Permission.RESOURCES_EDIT)
def verified(resource_id: int) -> Response:
    """Record that the entry was checked today."""
    return _action(resource_id, services.mark_verified, _("Marked as verified today."), "")
