"""The archive index's rules: normalising names, the blind-index keys, adding a patient, and
finding the candidates for a records request. Plain functions; the caller commits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, insert, select

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


def patient_problems(data: Mapping[str, Any], today: date) -> dict[str, str]:
    """What is wrong with one patient's fields (texts stripped, dates as ``date`` or None), as
    ``{field: message}``. Messages never repeat the values: they end up in the CLI output."""
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
    return problems


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
    changed = [field for field in FIELDS if getattr(patient, field) != values[field]]
    for field in changed:
        setattr(patient, field, values[field])
    if "mrn" in changed:
        patient.mrn_index = mrn_key(values["mrn"])
    if {"last_name", "former_names", "dob"} & set(changed):
        replace_match_keys(patient.id, match_keys_for(values["last_name"], values["former_names"], data["dob"]))
    if changed:
        db.session.flush()
    return changed


def add_patient(data: Mapping[str, Any]) -> ArchivedPatient:
    """Add one patient (``data`` already checked): encrypted fields, MRN index, match keys."""
    dob: date = data["dob"]
    patient = ArchivedPatient(mrn_index=mrn_key(data["mrn"]), **stored_values(data))
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
