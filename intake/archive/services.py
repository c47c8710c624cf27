"""The archive index's rules: normalising names, the blind-index keys, adding a patient, and
finding the candidates for a records request. Plain functions; the caller commits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, insert, select

from intake.archive.models import MATCH_INDEX_PURPOSE, MRN_INDEX_PURPOSE, ArchivedPatient, ArchiveMatchKey
from intake.extensions import db
from intake.security.crypto import keyring

CANDIDATE_LIMIT = 20
SEARCH_LIMIT = 50

# Field lengths, shared by the CSV import and the admin form.
MRN_MAX = 32
NAME_MAX = 100
FORMER_NAMES_MAX = 500
LOCATION_MAX = 200
CUSTODIAN_MAX = 200
FIELDS = ("mrn", "last_name", "first_name", "former_names", "dob", "admitted_on", "discharged_on",
          "record_location", "custodian", "retention_until")
DATE_FIELDS = ("dob", "admitted_on", "discharged_on", "retention_until")
TEXT_LIMITS = {"mrn": MRN_MAX, "last_name": NAME_MAX, "first_name": NAME_MAX, "former_names": FORMER_NAMES_MAX,
               "record_location": LOCATION_MAX, "custodian": CUSTODIAN_MAX}
REQUIRED = ("mrn", "last_name", "first_name", "dob")
_NOT_LETTERS = re.compile(r"[^a-z]+")
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv"}


def normalize_last_name(name: str) -> str:
    """Lower case, accents and punctuation removed: "O'Brien-Díaz" → "obriendiaz"."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return _NOT_LETTERS.sub("", text)


def last_name_of(full_name: str) -> str:
    """The last word of a full name that is not a suffix ("Jordan A. Example Jr." → "Example")."""
    words = [w for w in re.split(r"\s+", (full_name or "").strip()) if w]
    while len(words) > 1 and normalize_last_name(words[-1]) in _SUFFIXES | {""}:
        words.pop()
    return words[-1] if words else ""


def last_name_variants(full_name: str) -> list[str]:
    """The last names a full name may carry: its last word, and for longer names the last two and
    three words too ("Maria de la Cruz" → "Cruz", "la Cruz", "de la Cruz"), so a compound last name
    in the index is found. The first word is never taken as a last name unless it is the only one."""
    last = last_name_of(full_name)
    if not normalize_last_name(last):
        return []
    words = [w for w in re.split(r"\s+", (full_name or "").strip()) if w]
    while len(words) > 1 and normalize_last_name(words[-1]) in _SUFFIXES | {""}:
        words.pop()
    variants = [last]
    for size in (2, 3):
        if len(words) > size:
            variants.append(" ".join(words[-size:]))
    return variants


def match_key(last_name: str, dob: date) -> str:
    return keyring().blind_index(MATCH_INDEX_PURPOSE, f"{normalize_last_name(last_name)}|{dob.isoformat()}")


def mrn_key(mrn: str) -> str:
    return keyring().blind_index(MRN_INDEX_PURPOSE, (mrn or "").strip().upper())


def former_last_names(former_names: str | None) -> list[str]:
    """Last names from the "Last, First; Last, First" list (or plain full names, one per ';')."""
    names = []
    for part in (former_names or "").split(";"):
        part = part.strip()
        if not part:
            continue
        names.append(part.split(",")[0].strip() if "," in part else last_name_of(part))
    return names


def match_keys_for(last_name: str, former_names: str | None, dob: date) -> set[str]:
    return {match_key(name, dob) for name in [last_name, *former_last_names(former_names)]
            if normalize_last_name(name)}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def closed_on() -> date:
    """The day the facility closed (``FACILITY_CLOSED_ON``): no stay ends after it."""
    return date.fromisoformat(str(current_app.config["FACILITY_CLOSED_ON"]))


def patient_problems(data: Mapping[str, Any], today: date, documented_on: date | None = None) -> dict[str, str]:
    """What is wrong with one patient's fields (texts stripped, dates as ``date`` or None), as
    ``{field: message}``. Messages never repeat the values: they end up in the CLI output.
    ``documented_on``: the latest disclosure or request about an existing patient (for the floor)."""
    problems: dict[str, str] = {}
    for field, limit in TEXT_LIMITS.items():
        value = data.get(field) or ""
        if not isinstance(value, str):
            problems[field] = _("This must be text.")
        elif len(value) > limit:
            problems[field] = _("Keep this under %(max)d characters.", max=limit)
        elif _has_control_characters(value):
            problems[field] = _("Remove the invisible control characters.")
    for field in REQUIRED:
        if field not in problems and not data.get(field):
            problems[field] = _("This is required.")
    if "last_name" not in problems and data.get("last_name") and not normalize_last_name(data["last_name"]):
        problems["last_name"] = _("A last name needs at least one letter.")
    dob, admitted, discharged = data.get("dob"), data.get("admitted_on"), data.get("discharged_on")
    closed = closed_on()
    if dob and "dob" not in problems and dob > today:
        problems["dob"] = _("The date of birth cannot be in the future.")
    if admitted and "admitted_on" not in problems:
        if admitted > closed:
            problems["admitted_on"] = _("The admission cannot be after the facility closed.")
        elif dob and admitted < dob:
            problems["admitted_on"] = _("The admission cannot be before the date of birth.")
    if discharged and "discharged_on" not in problems:
        if discharged > closed:
            problems["discharged_on"] = _("The discharge cannot be after the facility closed.")
        elif admitted and discharged < admitted:
            problems["discharged_on"] = _("The discharge cannot be before the admission.")
        elif dob and discharged < dob:
            problems["discharged_on"] = _("The discharge cannot be before the date of birth.")
    keep = data.get("retention_until")
    if keep and not ({"dob", "discharged_on", "retention_until"} & set(problems)):
        problem = retention_problem(keep, retention_floor(discharged, dob, closed, documented_on))
        if problem:
            problems["retention_until"] = problem
    return problems


# --- The retention floor ------------------------------------------------------------------------
# California Health & Safety Code §123145(a): records are kept at least seven years after the
# patient's discharge; a minor's at least until one year after they turn eighteen, and in any case
# at least seven years. HIPAA documentation (45 CFR 164.530(j)(2), 164.316(b)(2)(i): six years from
# its creation) includes the accounting of disclosures and the requests and consents about the
# patient, and the disclosures Part 2 asks a program to account for (42 CFR 2.25); so the record is
# also kept six years after the last disclosure of it or request about it. The floor is the latest
# of these; a stay whose end is unknown ended at the latest when the facility closed.

RECORD_YEARS = 7  # H&S 123145(a)
MINOR_UNTIL_AGE = 19  # "one year after the minor has reached the age of 18"
DOCUMENTATION_YEARS = 6  # 45 CFR 164.530(j)(2); 42 CFR 2.25 accountings


def _plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def retention_floor(discharged_on: date | None, dob: date | None, closed: date,
                    documented_on: date | None = None) -> date:
    """The earliest lawful destruction date of one patient's record (see the rules above)."""
    discharge = discharged_on or closed
    floor = _plus_years(discharge, RECORD_YEARS)
    if dob is not None and _plus_years(dob, 18) > discharge:  # a minor when discharged
        floor = max(floor, _plus_years(dob, MINOR_UNTIL_AGE))
    if documented_on is not None:
        floor = max(floor, _plus_years(documented_on, DOCUMENTATION_YEARS))
    return floor


def retention_problem(typed: date | None, floor: date) -> str | None:
    """Why a typed "keep until" date is refused: before the lawful floor (the message names the rule)."""
    if typed is not None and typed < floor:
        return _("The record must be kept until at least %(day)s (Health & Safety Code §123145: seven years after "
                 "discharge, for a minor at least until age 19; six years after the last disclosure or request, "
                 "45 CFR 164.530(j)).", day=floor.isoformat())
    return None


def _iso_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def last_documented(patient_id: int) -> date | None:
    """The day of the latest disclosure of this patient's records, or request about them (two queries)."""
    from intake.records.deadlines import facility_day  # records builds on the archive; read it lazily
    from intake.records.models import Disclosure, RecordsRequest

    moments = [
        db.session.execute(select(func.max(Disclosure.disclosed_at))
                           .where(Disclosure.archived_patient_id == patient_id)).scalar(),
        db.session.execute(select(func.max(func.coalesce(RecordsRequest.closed_at, RecordsRequest.received_at)))
                           .where(RecordsRequest.archived_patient_id == patient_id)).scalar(),
    ]
    days = []
    for moment in moments:
        if moment is None:
            continue
        if isinstance(moment, str):  # SQLite hands back text from an aggregate
            moment = datetime.fromisoformat(moment)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        days.append(facility_day(moment))
    return max(days) if days else None


def floor_for(patient: ArchivedPatient) -> date:
    """The patient's floor from its stored dates and the documentation about it."""
    return retention_floor(_iso_day(patient.discharged_on), _iso_day(patient.dob), closed_on(),
                           last_documented(patient.id) if patient.id else None)


def refresh_retention_floor(patient_id: int | None) -> None:
    """Recompute one patient's floor (after a disclosure, a request about them, or an edit)."""
    if patient_id is None:
        return
    patient = db.session.get(ArchivedPatient, patient_id)
    if patient is not None:
        patient.retention_floor = floor_for(patient)


def find_by_mrn(mrn: str) -> ArchivedPatient | None:
    """The patient with this exact MRN (through its blind index), or None."""
    if not (mrn or "").strip():
        return None
    return db.session.execute(select(ArchivedPatient).where(ArchivedPatient.mrn_index == mrn_key(mrn))).scalar()


def find_by_name(last_name: str, dob: date, limit: int = SEARCH_LIMIT) -> list[ArchivedPatient]:
    """Patients whose last name (or a former one) and date of birth match exactly, through the
    match keys: nobody else is read or decrypted."""
    if not normalize_last_name(last_name):
        return []
    ids = select(ArchiveMatchKey.patient_id).where(ArchiveMatchKey.key == match_key(last_name, dob)).distinct()
    query = select(ArchivedPatient).where(ArchivedPatient.id.in_(ids)).order_by(ArchivedPatient.id).limit(limit)
    return list(db.session.execute(query).scalars())


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def stored_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The column values for checked ``data``: dates of the encrypted columns as ISO text, empty
    optional fields as None."""
    return {
        "mrn": str(data["mrn"]).strip(), "last_name": data["last_name"], "first_name": data["first_name"],
        "former_names": data.get("former_names") or None, "dob": data["dob"].isoformat(),
        "admitted_on": _iso(data.get("admitted_on")), "discharged_on": _iso(data.get("discharged_on")),
        "record_location": data.get("record_location") or None, "custodian": data.get("custodian") or None,
        "retention_until": data.get("retention_until"),
    }


def replace_match_keys(patient_id: int, keys: Iterable[str]) -> None:
    """Drop a patient's match keys and write ``keys`` instead (Core: the relationship is never loaded)."""
    db.session.execute(delete(ArchiveMatchKey).where(ArchiveMatchKey.patient_id == patient_id))
    rows = [{"patient_id": patient_id, "key": key} for key in sorted(set(keys))]
    if rows:
        db.session.execute(insert(ArchiveMatchKey), rows)


def update_patient(patient: ArchivedPatient, data: Mapping[str, Any]) -> list[str]:
    """Write checked ``data`` over a patient; recompute its MRN index and match keys when the
    fields they come from change. Returns the names of the fields that changed (no values)."""
    values = stored_values(data)
    fields = list(FIELDS)
    if "legal_hold" in data:  # the admin form carries the hold; the CSV import does not touch it
        values["legal_hold"] = bool(data["legal_hold"])
        values["hold_reason"] = (data.get("hold_reason") or None) if values["legal_hold"] else None
        fields += ["legal_hold", "hold_reason"]
    changed = [field for field in fields if getattr(patient, field) != values[field]]
    for field in changed:
        setattr(patient, field, values[field])
    if "mrn" in changed:
        patient.mrn_index = mrn_key(values["mrn"])
    if {"last_name", "former_names", "dob"} & set(changed):
        replace_match_keys(patient.id, match_keys_for(values["last_name"], values["former_names"], data["dob"]))
    if patient.retention_floor is None or {"dob", "discharged_on"} & set(changed):
        patient.retention_floor = floor_for(patient)
    if changed:
        db.session.flush()
    return changed


def add_patient(data: Mapping[str, Any]) -> ArchivedPatient:
    """Add one patient (``data`` already checked): encrypted fields, MRN index, match keys."""
    dob: date = data["dob"]
    patient = ArchivedPatient(mrn_index=mrn_key(data["mrn"]), **stored_values(data),
                              retention_floor=retention_floor(data.get("discharged_on"), dob, closed_on()),
                              legal_hold=bool(data.get("legal_hold")),
                              hold_reason=(data.get("hold_reason") or None) if data.get("legal_hold") else None)
    patient.match_keys = [ArchiveMatchKey(key=k) for k in sorted(
        match_keys_for(data["last_name"], data.get("former_names"), dob))]
    db.session.add(patient)
    db.session.flush()
    return patient


def candidates(names: Iterable[str], dob: date, limit: int = CANDIDATE_LIMIT) -> list[ArchivedPatient]:
    """Archive patients whose (last name, date of birth) matches any of the full ``names`` given
    (the patient's name and former names on a request): an exact match on the blind index, no
    table scan and no decryption of anyone else."""
    keys = {match_key(last, dob) for name in names for last in last_name_variants(name)}
    if not keys:
        return []
    ids = select(ArchiveMatchKey.patient_id).where(ArchiveMatchKey.key.in_(sorted(keys))).distinct()
    query = select(ArchivedPatient).where(ArchivedPatient.id.in_(ids)).order_by(ArchivedPatient.id).limit(limit)
    return list(db.session.execute(query).scalars())


def request_candidates(req: Any, limit: int = CANDIDATE_LIMIT) -> list[ArchivedPatient]:
    """The candidates for a records request: its patient's name and former names (separated by
    commas or semicolons) with its date of birth."""
    names = [req.patient_name, *re.split(r"[;,]", req.patient_former_names or "")]
    try:
        dob = date.fromisoformat(req.patient_dob)
    except (TypeError, ValueError):
        return []
    return candidates([n for n in names if n and n.strip()], dob, limit)


def archive_label(patient: ArchivedPatient) -> str:
    """One line that tells candidates apart: MRN, name, date of birth, dates of stay."""
    stay = f"{patient.admitted_on or '?'} – {patient.discharged_on or '?'}"
    return f"MRN {patient.mrn} · {patient.last_name}, {patient.first_name} · {patient.dob} · {stay}"


class CandidateLabel(str):
    """The label of one archive record offered at the verification step (``archive_label``),
    carrying the details the page shows in its table of candidates."""

    details: dict[str, str]
    looked_up: bool

    def __new__(cls, patient: ArchivedPatient, looked_up: bool = False) -> CandidateLabel:
        label = super().__new__(cls, archive_label(patient))
        label.details = {
            "mrn": patient.mrn, "name": f"{patient.last_name}, {patient.first_name}",
            "former_names": patient.former_names or "", "dob": patient.dob,
            "stay": f"{patient.admitted_on or '?'} – {patient.discharged_on or '?'}",
            "record_location": patient.record_location or "", "custodian": patient.custodian or "",
        }
        label.looked_up = looked_up
        return label


def verification_choices(req: Any, extra_ids: Iterable[int] = ()) -> list[tuple[str, CandidateLabel]]:
    """The choices of the verification step: the request's candidates, then any record the admin
    looked up by MRN (``extra_ids``, ids that do not exist are left out)."""
    found = request_candidates(req)
    known = {p.id for p in found}
    choices = [(str(p.id), CandidateLabel(p)) for p in found]
    for patient_id in extra_ids:
        if patient_id not in known:
            patient = db.session.get(ArchivedPatient, patient_id)
            if patient is not None:
                known.add(patient_id)
                choices.append((str(patient.id), CandidateLabel(patient, looked_up=True)))
    return choices
