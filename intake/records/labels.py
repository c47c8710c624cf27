"""What each records-request code is called on screen and in letters (translatable)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from intake.records.models import (
    Channel,
    Delivery,
    DeliveryMethod,
    DisclosureBasis,
    DocumentKind,
    EventKind,
    FeeBasis,
    FileKind,
    NoRecordsReason,
    RecordFormat,
    RequesterRelationship,
    RequestStatus,
    RequestType,
    Scope,
)
from intake.records.workflow import DenialReason, PartialReason, ReviewOutcome, VerificationMethod

TYPE_LABELS = {
    RequestType.COPY: _l("A copy of my records (or the patient's, as their representative)"),
    RequestType.THIRD_PARTY: _l("Send a copy to someone else (a doctor, lawyer, insurer…)"),
    RequestType.INSPECTION: _l("Look at the records in person"),
    RequestType.ACCOUNTING: _l("A list of who the records were disclosed to (accounting of disclosures)"),
    RequestType.ADDENDUM: _l("Add a statement to the record (an addendum of up to 250 words)"),
}

TYPE_SHORT = {
    RequestType.COPY: _l("Copy"),
    RequestType.THIRD_PARTY: _l("Copy to a third party"),
    RequestType.INSPECTION: _l("Inspection"),
    RequestType.ACCOUNTING: _l("Accounting of disclosures"),
    RequestType.ADDENDUM: _l("Addendum"),
}

RELATIONSHIP_LABELS = {
    RequesterRelationship.SELF: _l("I am the patient"),
    RequesterRelationship.PERSONAL_REPRESENTATIVE: _l("I am the patient's personal representative (for example a "
                                                      "parent of a minor, a guardian or an agent under a power of "
                                                      "attorney)"),
    RequesterRelationship.DECEASED_REPRESENTATIVE: _l("I represent a patient who has died (executor, administrator "
                                                      "or next of kin)"),
}

SCOPE_LABELS: dict[str, Any] = {
    Scope.EVERYTHING: _l("Everything you hold about the patient"),
    Scope.DATES: _l("Only records from certain dates"),
    Scope.KINDS: _l("Only certain kinds of document"),
}

KIND_LABELS: dict[str, Any] = {
    DocumentKind.DISCHARGE_SUMMARY: _l("Discharge summary"),
    DocumentKind.HISTORY_AND_PHYSICAL: _l("History and physical examination"),
    DocumentKind.MEDICATIONS: _l("Medication records"),
    DocumentKind.LAB_RESULTS: _l("Laboratory results"),
    DocumentKind.PROGRESS_NOTES: _l("Progress notes"),
    DocumentKind.TREATMENT_PLAN: _l("Treatment plan"),
    DocumentKind.BILLING: _l("Billing records"),
}

FORMAT_LABELS = {
    RecordFormat.ELECTRONIC: _l("Electronic (PDF)"),
    RecordFormat.PAPER: _l("Paper"),
}

DELIVERY_LABELS = {
    Delivery.SECURE_DOWNLOAD: _l("Secure download from this site"),
    Delivery.MAIL: _l("By post to an address I give"),
    Delivery.PICKUP: _l("I will pick them up"),
}

STATUS_LABELS = {
    RequestStatus.SUBMITTED: _l("Received"),
    RequestStatus.VERIFYING: _l("Checking identity"),
    RequestStatus.IN_REVIEW: _l("Being prepared"),
    RequestStatus.AWAITING_REQUESTER: _l("Waiting for you"),
    RequestStatus.FULFILLED: _l("Completed"),
    RequestStatus.PARTIALLY_FULFILLED: _l("Partly completed"),
    RequestStatus.DENIED: _l("Denied"),
    RequestStatus.NO_RECORDS: _l("No records found"),
    RequestStatus.WITHDRAWN: _l("Withdrawn"),
    RequestStatus.REVIEW_REQUESTED: _l("Review of the denial requested"),
    RequestStatus.REVIEW_DECIDED: _l("Review decided"),
}

# Staff read the same states from the office's side.
STAFF_STATUS_LABELS = {**STATUS_LABELS, RequestStatus.AWAITING_REQUESTER: _l("Waiting for the requester")}

# The button that makes each move, as staff see it.
MOVE_LABELS = {
    RequestStatus.SUBMITTED: _l("Resume (received)"),
    RequestStatus.VERIFYING: _l("Start identity check"),
    RequestStatus.IN_REVIEW: _l("Identity verified: prepare records"),
    RequestStatus.AWAITING_REQUESTER: _l("Ask the requester for information"),
    RequestStatus.FULFILLED: _l("Mark completed"),
    RequestStatus.PARTIALLY_FULFILLED: _l("Mark partly completed"),
    RequestStatus.DENIED: _l("Deny"),
    RequestStatus.NO_RECORDS: _l("No records held"),
    RequestStatus.WITHDRAWN: _l("Withdraw"),
    RequestStatus.REVIEW_REQUESTED: _l("Record a request for review"),
    RequestStatus.REVIEW_DECIDED: _l("Record the review decision"),
}

EVENT_LABELS = {
    EventKind.SUBMITTED: _l("Request received"),
    EventKind.STATUS: _l("Status changed"),
    EventKind.MESSAGE: _l("Message"),
    EventKind.NOTE: _l("Internal note"),
    EventKind.ASSIGNED: _l("Assigned"),
    EventKind.EXTENDED: _l("Deadline extended"),
    EventKind.CLOCK_PAUSED: _l("Clock paused"),
    EventKind.CLOCK_RESUMED: _l("Clock restarted"),
    EventKind.DELIVERED: _l("Records delivered"),
    EventKind.DOCUMENT: _l("Document"),
    EventKind.FEE_ESTIMATE: _l("Cost estimate"),
    EventKind.PROFESSIONAL: _l("Licensed professional"),
}

VERIFICATION_LABELS = {
    VerificationMethod.PHOTO_ID: _l("Photo ID document checked"),
    VerificationMethod.NOTARIZED_FORM: _l("Notarized request form"),
    VerificationMethod.IN_PERSON: _l("In person, with ID"),
    VerificationMethod.KNOWLEDGE_BASED: _l("Knowledge-based questions"),
}

# Plain-language reasons, as the requester reads them in the denial.
DENIAL_LABELS: dict[str, Any] = {
    DenialReason.ENDANGERMENT: _l("A licensed health professional has judged that access is reasonably likely to "
                                  "endanger the life or physical safety of the patient or another person."),
    DenialReason.REFERENCES_OTHER_PERSON: _l("The records name another person, and a licensed health professional "
                                             "has judged that access is reasonably likely to cause that person "
                                             "substantial harm."),
    DenialReason.REPRESENTATIVE_HARM: _l("A licensed health professional has judged that access by you, as the "
                                         "patient's representative, is reasonably likely to cause substantial harm "
                                         "to the patient or another person."),
    DenialReason.PSYCHOTHERAPY_NOTES: _l("The request is for psychotherapy notes, which the law does not require us "
                                         "to release."),
    DenialReason.LEGAL_PROCEEDINGS: _l("The information was compiled for a legal proceeding."),
    DenialReason.CONFIDENTIAL_SOURCE: _l("The information was given to us by someone else under a promise of "
                                         "confidentiality, and access would reveal who they are."),
    DenialReason.IDENTITY_NOT_VERIFIED: _l("We could not confirm your identity with the information provided."),
    DenialReason.AUTHORITY_NOT_SHOWN: _l("We could not confirm that you have the legal authority to act for the "
                                         "patient."),
}

PARTIAL_LABELS: dict[str, Any] = {
    PartialReason.SOME_RECORDS_LOST: _l("Some of the records were destroyed or are no longer held by us."),
    PartialReason.PART_DENIED: _l("Part of the records is withheld for a reason the law allows."),
    PartialReason.HELD_ELSEWHERE: _l("Part of the records is held by another custodian."),
}

REVIEW_OUTCOME_LABELS: dict[str, Any] = {
    ReviewOutcome.UPHELD: _l("The denial is upheld"),
    ReviewOutcome.OVERTURNED: _l("The denial is overturned: the records will be provided"),
}

NO_RECORDS_LABELS = {
    NoRecordsReason.NOT_IN_INDEX: _l("The patient is not in the archive index"),
    NoRecordsReason.DESTROYED: _l("The records were destroyed (in the fire, or after the retention period)"),
    NoRecordsReason.HELD_ELSEWHERE: _l("The records are held by another custodian (name them)"),
}

DELIVERY_METHOD_LABELS = {
    DeliveryMethod.DOWNLOAD: _l("Secure download (released on this request)"),
    DeliveryMethod.MAIL: _l("Sent by post"),
    DeliveryMethod.PICKUP: _l("Picked up"),
    DeliveryMethod.INSPECTION: _l("Inspected in person"),
    DeliveryMethod.FAX: _l("Sent by fax"),
    DeliveryMethod.RECIPIENT_LINK: _l("Secure link e-mailed to the recipient, access code sent separately"),
}

FILE_KIND_LABELS = {
    FileKind.PHOTO_ID: _l("Photo ID"),
    FileKind.PROOF_OF_AUTHORITY: _l("Proof of authority to act for the patient"),
    FileKind.REQUESTER_OTHER: _l("Other document from the requester"),
    FileKind.RELEASED_RECORD: _l("Released records"),
    FileKind.LETTER: _l("Letter"),
    FileKind.INTERNAL: _l("Internal working document"),
    FileKind.REQUEST_SCAN: _l("The written request (scan)"),
    FileKind.PROFESSIONAL: _l("A licensed professional's written decision"),
}

FEE_BASIS_LABELS = {
    FeeBasis.PAPER: _l("Paper copies, per page"),
    FeeBasis.MICROFILM: _l("Copies from microfilm, per page"),
    FeeBasis.ELECTRONIC_FLAT: _l("Electronic copy, flat fee"),
    FeeBasis.BENEFITS_APPEAL: _l("Free: the copy supports a claim or appeal for public benefits"),
    FeeBasis.U_VISA: _l("Free: the copy supports a petition for U nonimmigrant status (U visa)"),
    FeeBasis.VAWA_SELF_PETITION: _l("Free: the copy supports a VAWA self-petition for permanent residence"),
    FeeBasis.LEGAL_AID_BENEFITS: _l("Free: a legal-aid representative asks for it for a public-benefits claim"),
    FeeBasis.WAIVED: _l("Waived"),
}

CHANNEL_LABELS = {
    Channel.PORTAL: _l("Online, through the records portal"),
    Channel.MAIL: _l("By post"),
    Channel.FAX: _l("By fax"),
    Channel.IN_PERSON: _l("In person"),
    Channel.PHONE_THEN_WRITING: _l("A phone call, followed by the written request"),
}

DISCLOSURE_BASIS_LABELS = {
    DisclosureBasis.CONSENT: _l("Under the patient's written consent (42 CFR 2.31)"),
    DisclosureBasis.EMERGENCY: _l("Medical emergency (42 CFR 2.51)"),
    DisclosureBasis.DESIGNATED_PROFESSIONAL: _l("To the professional the patient designated (H&S 123115(b))"),
}
