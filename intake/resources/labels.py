"""Human labels for the directory's codes (kinds of service, payers), translated at render time."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from intake.resources.models import ResourceKind

KIND_LABELS = {
    ResourceKind.DETOX: _l("Detox"),
    ResourceKind.RESIDENTIAL: _l("Residential treatment"),
    ResourceKind.OUTPATIENT: _l("Outpatient"),
    ResourceKind.DUAL_DIAGNOSIS: _l("Dual diagnosis"),
    ResourceKind.TAPER_SUPPORT: _l("Medication-assisted treatment / taper support"),
    ResourceKind.SUPPORT_GROUP: _l("Support group"),
    ResourceKind.CRISIS_LINE: _l("Crisis line"),
    ResourceKind.OTHER: _l("Other"),
}

PAYER_LABELS = {
    "medi_cal": _l("Medi-Cal"),
    "medicare": _l("Medicare"),
    "private": _l("Private insurance"),
    "tricare": _l("TRICARE"),
    "self_pay": _l("Self-pay"),
    "sliding_scale": _l("Sliding scale"),
    "free": _l("Free"),
}

# The directory search's payer filter (intake.resources.services.PAYER_FILTERS).
PAYER_FILTER_LABELS = {
    "medi_cal": _l("Medi-Cal"),
    "medicare": _l("Medicare"),
    "private": _l("Private insurance"),
    "tricare": _l("TRICARE"),
    "uninsured": _l("Uninsured (sliding scale or free)"),
    "self_pay": _l("Self-pay"),
}
