"""The archive index's rules: normalising names, the blind-index keys, adding a patient, and
finding the candidates for a records request. Plain functions; the caller commits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select

from intake.archive.models import MATCH_INDEX_PURPOSE, MRN_INDEX_PURPOSE, ArchivedPatient, ArchiveMatchKey
from intake.extensions import db
from intake.security.crypto import keyring

CANDIDATE_LIMIT = 20
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


def add_patient(data: Mapping[str, Any]) -> ArchivedPatient:
    """Add one patient (``data`` already checked): encrypted fields, MRN index, match keys."""
    dob: date = data["dob"]
    patient = ArchivedPatient(
        mrn=str(data["mrn"]).strip(), mrn_index=mrn_key(data["mrn"]),
        last_name=data["last_name"], first_name=data["first_name"], former_names=data.get("former_names") or None,
        dob=dob.isoformat(),
        admitted_on=data["admitted_on"].isoformat() if data.get("admitted_on") else None,
        discharged_on=data["discharged_on"].isoformat() if data.get("discharged_on") else None,
        record_location=data.get("record_location") or None, custodian=data.get("custodian") or None,
        retention_until=data.get("retention_until"),
    )
    patient.match_keys = [ArchiveMatchKey(key=k) for k in sorted(
        match_keys_for(data["last_name"], data.get("former_names"), dob))]
    db.session.add(patient)
    db.session.flush()
    return patient


def candidates(names: Iterable[str], dob: date, limit: int = CANDIDATE_LIMIT) -> list[ArchivedPatient]:
    """Archive patients whose (last name, date of birth) matches any of the full ``names`` given
    (the patient's name and former names on a request): an exact match on the blind index, no
    table scan and no decryption of anyone else."""
    keys = {match_key(last_name_of(name), dob) for name in names if normalize_last_name(last_name_of(name))}
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
