"""Admin pages for the archive patient index (``ARCHIVE_MANAGE``).

The index is never listed or decrypted as a whole: a search is an exact match on a blind index
(the MRN, or a last name with a date of birth), and only the patients found are read. Searches are
POSTed so that names, dates of birth and MRNs never appear in a URL or an access log. Every
search (without its terms), view, addition and edit is audited.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from intake.archive.forms import EmergencyDisclosureForm, MrnLookupForm, PatientForm, SearchForm
from intake.archive.models import ArchivedPatient
from intake.archive.services import (
    add_patient,
    find_by_mrn,
    find_by_name,
    last_documented,
    mrn_key,
    patient_problems,
    update_patient,
)
from intake.audit.services import record
from intake.clock import parse_local
from intake.extensions import db
from intake.permissions import Permission, can, require
from intake.records import disclosures, queue
from intake.records.common import OBJECT_TYPE as REQUEST_OBJECT_TYPE
from intake.records.common import RequestInvalid, RequestRefused
from intake.records.deadlines import today
from intake.records.labels import DISCLOSURE_BASIS_LABELS, STAFF_STATUS_LABELS
from intake.records.models import RecordsRequest, RequestStatus

bp = Blueprint("archive_admin", __name__, url_prefix="/admin/archive")

OBJECT_TYPE = "archived_patient"
DATE_FIELDS = ("dob", "admitted_on", "discharged_on")


def _actor():
    return current_user._get_current_object()


@bp.route("/", methods=["GET", "POST"])
@require(Permission.ARCHIVE_MANAGE)
def index() -> str | tuple[str, int]:
    """Search the index by exact MRN, or by last name (current or former) and date of birth."""
    form = SearchForm()
    if not form.is_submitted():
        return render_template("admin/archive/index.html", form=form, searched=False, results=[])
    if not form.validate():
        return render_template("admin/archive/index.html", form=form, searched=False, results=[]), 400
    if form.mrn.data:
        by, found = "mrn", find_by_mrn(form.mrn.data)
        results = [found] if found else []
    elif form.last_name.data and form.dob.data:
        by, results = "name_dob", find_by_name(form.last_name.data, form.dob.data)
    else:
        message = _("Enter an MRN, or a last name and a date of birth.")
        if form.last_name.data:
            form.dob.errors.append(_("Enter the date of birth too."))
        elif form.dob.data:
            form.last_name.errors.append(_("Enter the last name too."))
        else:
            form.mrn.errors.append(message)
        return render_template("admin/archive/index.html", form=form, searched=False, results=[]), 400
    # How and how many: never the terms.
    record("archive.searched", actor=_actor(), details={"by": by, "found": len(results)})
    db.session.commit()
    return render_template("admin/archive/index.html", form=form, searched=True, results=results)


def _version(patient: ArchivedPatient) -> str:
    return str(int(patient.updated_at.timestamp() * 1_000_000))


def _form_for(patient: ArchivedPatient) -> PatientForm:
    form = PatientForm(formdata=None, obj=patient)
    for field in DATE_FIELDS:
        value = getattr(patient, field)
        getattr(form, field).data = date.fromisoformat(value) if value else None
    form.loaded.data = _version(patient)
    return form


def _linked_requests(patient_id: int) -> list:
    """The requests verified against this patient: references and status only (nothing decrypted)."""
    return list(db.session.execute(
        select(RecordsRequest.reference, RecordsRequest.human_ref, RecordsRequest.status, RecordsRequest.received_at)
        .where(RecordsRequest.archived_patient_id == patient_id).order_by(RecordsRequest.received_at.desc())
    ).all())


def _detail_page(patient: ArchivedPatient, form: PatientForm, status: int = 200,
                 page_error: str | None = None, emergency: EmergencyDisclosureForm | None = None) -> tuple[str, int]:
    return render_template("admin/archive/detail.html", patient=patient, form=form, page_error=page_error,
                           requests=_linked_requests(patient.id), status_labels=STAFF_STATUS_LABELS,
                           emergency_form=emergency or EmergencyDisclosureForm(prefix="emergency", formdata=None),
                           may_disclose=can(_actor(), Permission.REQUESTS_QUEUE),
                           disclosures=disclosures.patient_disclosures(patient.id),
                           basis_labels=DISCLOSURE_BASIS_LABELS), status


def _meaning_problems(form: PatientForm, patient_id: int | None) -> bool:
    """Put the service's problems (and a taken MRN) next to the fields; True when there are any."""
    data = form.data_for_service()
    problems = patient_problems(data, today(), last_documented(patient_id) if patient_id else None)
    if "mrn" not in problems:
        other = db.session.execute(select(ArchivedPatient.id).where(
            ArchivedPatient.mrn_index == mrn_key(data["mrn"]))).scalar()
        if other is not None and other != patient_id:
            problems["mrn"] = _("Another record in the index has this MRN.")
    for field, message in problems.items():
        getattr(form, field).errors.append(message)
    return bool(problems)


@bp.route("/<int(max=2147483647):patient_id>", methods=["GET", "POST"])
@require(Permission.ARCHIVE_MANAGE)
def detail(patient_id: int) -> Response | tuple[str, int]:
    """One patient: their details, the requests linked to them, and the edit form."""
    patient = db.get_or_404(ArchivedPatient, patient_id)
    form = PatientForm()
    if not form.is_submitted():
        record("archive.viewed", actor=_actor(), object_type=OBJECT_TYPE, object_id=patient.id)
        db.session.commit()
        return _detail_page(patient, _form_for(patient))
    if not form.validate():
        return _detail_page(patient, form, 400)
    if form.loaded.data != _version(patient):
        form.loaded.data = _version(patient)
        return _detail_page(patient, form, 409, page_error=_(
            "Someone changed this record while you were editing it. Your changes are below and were not "
            "saved: check them against the record and save again."))
    if _meaning_problems(form, patient.id):
        return _detail_page(patient, form, 400)
    try:
        changed = update_patient(patient, form.data_for_service())
        if changed:
            record("archive.updated", actor=_actor(), object_type=OBJECT_TYPE, object_id=patient.id,
                   details={"fields": changed})
        db.session.commit()
    except IntegrityError:  # the same MRN saved elsewhere a moment ago
        db.session.rollback()
        patient = db.get_or_404(ArchivedPatient, patient_id)
        form.mrn.errors.append(_("Another record in the index has this MRN."))
        return _detail_page(patient, form, 409)
    if changed:
        flash(_("Archive record #%(id)d saved.", id=patient.id), "success")
    else:
        flash(_("Nothing was changed in archive record #%(id)d.", id=patient.id), "info")
    return redirect(url_for("archive_admin.detail", patient_id=patient.id))


@bp.route("/new", methods=["GET", "POST"])
@require(Permission.ARCHIVE_MANAGE)
def new() -> Response | str | tuple[str, int]:
    """Add one patient to the index by hand."""
    form = PatientForm()
    if not form.is_submitted():
        return render_template("admin/archive/new.html", form=form)
    if not form.validate() or _meaning_problems(form, None):
        return render_template("admin/archive/new.html", form=form), 400
    try:
        patient = add_patient(form.data_for_service())
        record("archive.created", actor=_actor(), object_type=OBJECT_TYPE, object_id=patient.id)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.mrn.errors.append(_("Another record in the index has this MRN."))
        return render_template("admin/archive/new.html", form=form), 409
    flash(_("Archive record #%(id)d added.", id=patient.id), "success")
    return redirect(url_for("archive_admin.detail", patient_id=patient.id))


@bp.post("/<int(max=2147483647):patient_id>/emergency-disclosure")
@require(Permission.ARCHIVE_MANAGE)
def emergency_disclosure(patient_id: int) -> Response | tuple[str, int]:
    """Record a disclosure of this patient's records in a medical emergency (42 CFR 2.51): through the
    disclosure gate, into the patient's accounting of disclosures."""
    patient = db.get_or_404(ArchivedPatient, patient_id)
    form = EmergencyDisclosureForm(prefix="emergency")
    if not form.validate():
        if form.csrf_token.errors:
            abort(400)
        return _detail_page(patient, _form_for(patient), 400, emergency=form)
    data = disclosures.EmergencyInput(recipient_name=form.recipient_name.data, affiliation=form.affiliation.data,
                                      disclosed_at=parse_local(form.disclosed_at.data),
                                      information=form.information.data, reason=form.reason.data)
    try:
        disclosures.record_emergency(patient, _actor(), data)
    except RequestRefused:
        db.session.rollback()
        abort(403)
    except RequestInvalid as exc:
        db.session.rollback()
        patient = db.get_or_404(ArchivedPatient, patient_id)
        for name, message in exc.errors.items():
            getattr(form, name).errors = [*getattr(form, name).errors, message]
        return _detail_page(patient, _form_for(patient), 400, emergency=form)
    db.session.commit()
    flash(_("The emergency disclosure is recorded in archive record #%(id)d's accounting.", id=patient_id), "success")
    return redirect(url_for("archive_admin.detail", patient_id=patient_id), 303)


@bp.app_template_global("archive_lookup_form")
def archive_lookup_form() -> MrnLookupForm:
    """An empty MRN lookup form, for the verification step of a request's queue page."""
    return MrnLookupForm(formdata=None, prefix="lookup")


@bp.post("/lookup/<reference>")
@require(Permission.ARCHIVE_MANAGE)
def lookup_for_request(reference: str) -> Response:
    """Find one archive record by exact MRN for a request waiting for verification, and go back to
    the request with that record added to the choices (by its id: the MRN stays out of the URL)."""
    if not queue.REFERENCE_RE.match(reference):
        abort(404)
    req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar()
    if req is None:
        abort(404)
    back = url_for("request_queue.detail", reference=reference)
    if req.status != RequestStatus.VERIFYING:
        flash(_("%(ref)s is not waiting for verification; nothing was looked up.", ref=req.human_ref), "warning")
        return redirect(back)
    form = MrnLookupForm(prefix="lookup")
    if not form.validate() and form.csrf_token.errors:
        abort(400)
    if form.errors or not form.mrn.data:
        flash(_("Enter the whole medical record number (at most %(max)d characters) to look it up.",
                max=form.mrn.render_kw["maxlength"]), "warning")
        return redirect(back)
    found = find_by_mrn(form.mrn.data)
    record("archive.searched", actor=_actor(), object_type=REQUEST_OBJECT_TYPE, object_id=req.id,
           details={"by": "mrn", "found": 1 if found else 0})
    db.session.commit()
    if found is None:
        flash(_("No record in the archive index has that MRN."), "warning")
        return redirect(back)
    flash(_("Archive record #%(id)d is now among the choices below.", id=found.id), "success")
    return redirect(url_for("request_queue.detail", reference=reference, archive=found.id,
                            _anchor="move-in_review-heading"))
