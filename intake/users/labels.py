"""Labels for roles and licences, and the states that issue licences.

Role names are in plain words everywhere a person reads them (the users page, the 403 page, the
account page); the codes stay in URLs, forms and the audit trail.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from intake.users.models import LicenceType, Role, role_order

ROLE_LABELS = {
    Role.OPERATOR: _l("Helpline operator"),
    Role.SUPERVISOR: _l("Helpline supervisor"),
    Role.RECORDS_CLERK: _l("Records clerk"),
    Role.PRIVACY_OFFICER: _l("Privacy officer"),
    Role.ADMIN: _l("Administrator"),
    Role.REQUESTER: _l("Records requester"),
}

# What each staff role is for, in a line (the users page and the invitation form).
ROLE_SUMMARIES = {
    Role.OPERATOR: _l("Logs calls and edits their own, the call list, follow-ups, the resource directory; "
                      "reveals a caller's contact details with a reason."),
    Role.SUPERVISOR: _l("An operator's work plus the urgent queue (live drafts too), any call, quality review, "
                        "the helpline dashboard."),
    Role.RECORDS_CLERK: _l("The records queue, requests entered by staff, the archive index, documents, letters, "
                           "fees, the records dashboard. No call log."),
    Role.PRIVACY_OFFICER: _l("The audit review, disclosure reports and accountings, exports; reads the records "
                             "queue and dashboards without changing them."),
    Role.ADMIN: _l("Accounts and roles, settings, site notices, the resource directory, retention."),
}

LICENCE_TYPE_LABELS = {
    LicenceType.MD: _l("MD (physician)"),
    LicenceType.DO: _l("DO (osteopathic physician)"),
    LicenceType.PSYD: _l("PsyD (psychologist)"),
    LicenceType.PHD: _l("PhD (licensed psychologist)"),
    LicenceType.LCSW: _l("LCSW (clinical social worker)"),
    LicenceType.LMFT: _l("LMFT (marriage and family therapist)"),
    LicenceType.LPCC: _l("LPCC (professional clinical counselor)"),
    LicenceType.RN: _l("RN (registered nurse)"),
    LicenceType.NP: _l("NP (nurse practitioner)"),
    LicenceType.OTHER: _l("Other licence"),
}

# The issuing state: the 50 states, the District of Columbia and the territories with licensing
# boards (USPS codes). Proper names, not translated.
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming", "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands",
}


def role_label(role: Role | str) -> str:
    """A role's name in plain words (in the current language); the code itself if unknown."""
    try:
        return str(ROLE_LABELS[Role(role)])
    except (ValueError, KeyError):
        return str(role)


def roles_label(roles) -> str:
    """Several roles in plain words, in the roles' order: "Helpline operator, Administrator"."""
    return ", ".join(role_label(role) for role in role_order(Role(r) for r in roles))


def licence_label(kind: LicenceType | str) -> str:
    """A licence type in plain words; the code itself if unknown."""
    try:
        return str(LICENCE_TYPE_LABELS[LicenceType(kind)])
    except (ValueError, KeyError):
        return str(kind)
