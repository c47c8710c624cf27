"""Legal clocks: the pure policy table, working days and California holidays, and the due dates
the services compute with time frozen (time-machine) for every row of every policy: pauses,
extensions, the facility's local day of receipt, urgency and the plain-words explanation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import clocks, deadlines, services
from intake.records.clocks import DayCount, ExtensionRefused, Urgency
from intake.records.common import RequestInvalid
from intake.records.models import EventKind, RecordsRequest, RequestEvent, RequestStatus, RequestType
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, LICENCE

S = RequestStatus
T = RequestType


def at(day: str, hour: int = 19, minute: int = 0) -> datetime:
    """A UTC moment; 19:00 UTC is late morning in Los Angeles, the same calendar day."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN, licence=LICENCE)}


THIRD_PARTY = {"request_type": "third_party", "recipient_name": "Dr. Example", "recipient_address": "1 Main St",
               "purpose": "Continuing care"}
BY_TYPE = {
    T.COPY: {},
    T.INSPECTION: {"request_type": "inspection", "delivery": None},
    T.ACCOUNTING: {"request_type": "accounting"},
    T.ADDENDUM: {"request_type": "addendum", "addendum_text": "My discharge date was wrong."},
    T.THIRD_PARTY: THIRD_PARTY,
}


def submit(make_request, owner, moment: datetime, request_type: T = T.COPY) -> str:
    """Submit at a frozen ``moment`` (the service reads the clock itself)."""
    with time_machine.travel(moment, tick=False):
        return make_request(owner, **BY_TYPE[request_type])


# --- Pure: the policy table --------------------------------------------------------------------

def test_california_policy_table():
    policy = clocks.build_policies()["california"]
    copy, inspection = policy.rules[T.COPY], policy.rules[T.INSPECTION]
    assert (copy.days, copy.count, copy.extension_days) == (15, DayCount.CALENDAR, None)
    assert "123110" in copy.citation
    assert (inspection.days, inspection.count, inspection.extension_days) == (5, DayCount.WORKING, None)
    assert "123110" in inspection.citation
    for kind, cite in ((T.ACCOUNTING, "164.528"), (T.ADDENDUM, "164.526")):
        rule = policy.rules[kind]
        assert (rule.days, rule.count, rule.extension_days) == (60, DayCount.CALENDAR, 30)
        assert cite in rule.citation and cite in rule.extension_citation
    assert "123111" in policy.rules[T.ADDENDUM].citation
    third = policy.rules[T.THIRD_PARTY]
    assert (third.days, third.internal_target, third.extension_days) == (30, True, None)
    assert copy.rolls_to_working_day and not policy.rules[T.ACCOUNTING].rolls_to_working_day
    assert "keeps running" in policy.waiting_note and "123110" in policy.waiting_note


def test_hipaa_policy_table_and_third_party_setting():
    policies = clocks.build_policies(third_party_days=20)
    hipaa = policies["hipaa"]
    for kind in (T.COPY, T.INSPECTION):
        rule = hipaa.rules[kind]
        assert (rule.days, rule.count, rule.extension_days) == (30, DayCount.CALENDAR, 30)
        assert "164.524" in rule.citation and not rule.rolls_to_working_day
    assert "keeps running" in hipaa.waiting_note and "164.524" in hipaa.waiting_note
    assert policies["california"].rules[T.THIRD_PARTY].days == 20 and hipaa.rules[T.THIRD_PARTY].days == 20
    assert set(policies) == {"california", "hipaa"}
    for policy in policies.values():
        assert set(policy.rules) == set(T)


# --- Pure: holidays and working days -----------------------------------------------------------

def test_california_holidays_2026_match_the_calendar():
    assert clocks.california_holidays(2026) == {
        date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 3, 31), date(2026, 5, 25),
        date(2026, 7, 4),  # a Saturday: not moved
        date(2026, 9, 7), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25),
    }


@pytest.mark.parametrize("received, due", [
    (date(2026, 9, 21), date(2026, 9, 28)),  # Native American Day is Friday 25 September 2026: a working day
    (date(2027, 9, 20), date(2027, 9, 27)),  # ... and Friday 24 September 2027
])
def test_hsc_123110_holidays_are_the_statute_and_calendar_intersection(received, due):
    """H&S 123110 (5 working days to inspect) with the module's own rule: a holiday counts only when
    the legal-holiday statute (Gov. Code 6700) and the state employees' calendar both name it. Native
    American Day is in the statute but not a state employees' holiday, so it is a working day."""
    assert date(2026, 9, 25) not in clocks.california_holidays(2026)
    assert date(2027, 9, 24) not in clocks.california_holidays(2027)
    inspection = clocks.build_policies()["california"].rules[T.INSPECTION]
    assert clocks.compute_due(inspection, received).due_on == due


def test_a_sunday_holiday_is_observed_on_monday():
    holidays = clocks.california_holidays(2027)
    assert date(2027, 7, 4).weekday() == 6
    assert {date(2027, 7, 4), date(2027, 7, 5)} <= holidays
    assert date(2027, 7, 3) not in holidays  # Saturday before: not moved the other way
    # 2028: Christmas on a Monday, New Year's Day on a Saturday (not moved), 2023: New Year on a Sunday.
    assert date(2028, 12, 25) in clocks.california_holidays(2028)
    assert date(2023, 1, 2) in clocks.california_holidays(2023)


@pytest.mark.parametrize("start, expected", [
    (date(2026, 11, 25), date(2026, 12, 3)),  # Wednesday before Thanksgiving: Thu 26 is a holiday
    (date(2026, 3, 27), date(2026, 4, 6)),  # Friday; Cesar Chavez Day on Tue 31
    (date(2027, 7, 2), date(2027, 7, 12)),  # Friday; 4 July on a Sunday, observed Monday 5
    (date(2026, 3, 2), date(2026, 3, 9)),  # an ordinary Monday
    (date(2026, 3, 7), date(2026, 3, 13)),  # received on a Saturday
    (date(2026, 12, 24), date(2027, 1, 4)),  # Christmas and New Year's Day, across the year
])
def test_five_working_days(start, expected):
    assert clocks.add_working_days(start, 5) == expected


def test_extra_holidays_push_working_days():
    extra = clocks.parse_extra_holidays(" 2026-11-27 , 2026-12-24,")
    assert extra == {date(2026, 11, 27), date(2026, 12, 24)}
    assert clocks.add_working_days(date(2026, 11, 25), 5, extra) == date(2026, 12, 4)
    assert not clocks.is_working_day(date(2026, 11, 27), extra)
    assert clocks.is_working_day(date(2026, 11, 27))
    with pytest.raises(ValueError):
        clocks.parse_extra_holidays("2026-11-27, next friday")


def test_compute_due_adds_the_extension_as_calendar_days():
    rule = clocks.build_policies()["hipaa"].rules[T.COPY]
    due = clocks.compute_due(rule, date(2026, 1, 5), extended_days=30)
    assert (due.base_due_on, due.due_on) == (date(2026, 2, 4), date(2026, 3, 6))
    inspection = clocks.build_policies()["california"].rules[T.INSPECTION]
    assert clocks.compute_due(inspection, date(2026, 11, 25)).due_on == date(2026, 12, 3)


@pytest.mark.parametrize("kwargs, code", [
    ({"rule": "copy"}, "no_extension"),
    ({"already_extended": 30}, "already_extended"),
    ({"today": date(2026, 5, 2)}, "past_due"),
    ({"reason": "   "}, "reason_required"),
    ({"reason": None}, "reason_required"),
])
def test_check_extension_refusals(kwargs, code):
    policy = clocks.build_policies()["california"]
    args = {"rule": policy.rules[T.ACCOUNTING], "due_on": date(2026, 5, 1), "today": date(2026, 4, 1),
            "already_extended": 0, "reason": "Records are off site."}
    if kwargs.get("rule") == "copy":
        kwargs = {**kwargs, "rule": policy.rules[T.COPY]}
    args.update(kwargs)
    with pytest.raises(ExtensionRefused) as excinfo:
        clocks.check_extension(**args)
    assert str(excinfo.value) == code


def test_check_extension_allowed_up_to_the_due_date():
    rule = clocks.build_policies()["california"].rules[T.ADDENDUM]
    assert clocks.check_extension(rule, date(2026, 5, 1), date(2026, 5, 1), 0, "Busy.") == 30


def test_paused_day_count_in_the_facility_zone():
    tz = "America/Los_Angeles"
    assert clocks.paused_day_count(at("2026-01-10", 17), at("2026-01-11", 1), tz) == 0  # 09:00-17:00 PST
    assert clocks.paused_day_count(at("2026-01-11", 7), at("2026-01-11", 9), tz) == 1  # 23:00 -> 01:00 PST
    assert clocks.paused_day_count(at("2026-01-10"), at("2026-01-17"), tz) == 7
    assert clocks.paused_day_count(at("2026-01-17"), at("2026-01-10"), tz) == 0  # never negative


def test_local_day():
    assert clocks.local_day(datetime(2026, 3, 2, 7, 30, tzinfo=UTC), "America/Los_Angeles") == date(2026, 3, 1)
    assert clocks.local_day(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "America/Los_Angeles") == date(2026, 3, 2)


@pytest.mark.parametrize("due, expected", [
    (date(2026, 6, 10), Urgency.DUE_SOON),  # due today
    (date(2026, 6, 13), Urgency.DUE_SOON),  # in exactly 3 days
    (date(2026, 6, 14), Urgency.ON_TRACK),  # in 4 days
    (date(2026, 6, 9), Urgency.OVERDUE),  # yesterday
    (date(2025, 6, 9), Urgency.OVERDUE),
])
def test_urgency_boundaries(due, expected):
    assert clocks.urgency(due, date(2026, 6, 10)) is expected


def test_urgency_window_is_a_setting():
    assert clocks.urgency(date(2026, 6, 15), date(2026, 6, 10), due_soon_days=5) is Urgency.DUE_SOON
    assert clocks.urgency(date(2026, 6, 11), date(2026, 6, 10), due_soon_days=0) is Urgency.ON_TRACK


# --- Through the services, time frozen ---------------------------------------------------------

@pytest.mark.parametrize("request_type, received, due", [
    (T.COPY, "2026-03-02", date(2026, 3, 17)),  # 15 calendar days
    (T.COPY, "2026-12-20", date(2027, 1, 4)),  # calendar days run through holidays
    (T.INSPECTION, "2026-11-25", date(2026, 12, 3)),
    (T.INSPECTION, "2026-03-27", date(2026, 4, 6)),
    (T.INSPECTION, "2027-07-02", date(2027, 7, 12)),
    (T.ACCOUNTING, "2026-03-02", date(2026, 5, 1)),
    (T.ADDENDUM, "2026-03-02", date(2026, 5, 1)),
    (T.THIRD_PARTY, "2026-03-02", date(2026, 4, 1)),
])
def test_california_due_dates(app, people, make_request, request_type, received, due):
    ref = submit(make_request, people["requester"], at(received), request_type)
    with app.app_context():
        req = _load(ref)
        assert (req.request_type, req.clock_policy) == (request_type, "california")
        assert req.due_on == due == deadlines.due_date(req).due_on


def test_extra_holiday_setting_moves_an_inspection(app, people, make_request):
    app.config["RECORDS_EXTRA_HOLIDAYS"] = "2026-11-27"
    ref = submit(make_request, people["requester"], at("2026-11-25"), T.INSPECTION)
    with app.app_context():
        assert _load(ref).due_on == date(2026, 12, 4)


def test_third_party_target_setting(app, people, make_request):
    app.config["RECORDS_THIRD_PARTY_TARGET_DAYS"] = 10
    with time_machine.travel(at("2026-03-02"), tick=False):
        ref = make_request(people["requester"], **THIRD_PARTY, record_format="paper")
    with app.app_context():
        req = _load(ref)
        assert req.due_on == date(2026, 3, 12)
        assert any("our own target" in line for line in deadlines.explain_due(req))


def test_hipaa_164_524_c3_a_patient_directed_electronic_copy_is_an_access_request(app, people, make_request):
    """45 CFR 164.524(c)(3)(ii): an electronic copy the patient directs to a third party is an access
    request, on the access clock of 164.524(b)(2) (30 days, one extension), not "our own target"; only a
    paper copy to a third party has the facility's target, which can never exceed 30 days."""
    app.config["RECORDS_THIRD_PARTY_TARGET_DAYS"] = 10
    ref = submit(make_request, people["requester"], at("2026-03-02"), T.THIRD_PARTY)  # electronic by default
    with app.app_context():
        req = _load(ref)
        assert req.due_on == date(2026, 4, 1)
        lines = " ".join(deadlines.explain_due(req))
        assert "164.524(b)(2)" in lines and "164.524(c)(3)(ii)" in lines and "our own target" not in lines
        assert deadlines.rule_of(req).extension_days == 30
    from config import records_setting_problems

    for bad in (0, 31, 365, True):
        assert any("RECORDS_THIRD_PARTY_TARGET_DAYS" in p
                   for p in records_setting_problems({**app.config, "RECORDS_THIRD_PARTY_TARGET_DAYS": bad}))
    assert records_setting_problems({**app.config, "RECORDS_THIRD_PARTY_TARGET_DAYS": 30}) == []


@pytest.mark.parametrize("request_type, due", [
    (T.COPY, date(2026, 2, 4)), (T.INSPECTION, date(2026, 2, 4)), (T.ACCOUNTING, date(2026, 3, 6)),
    (T.ADDENDUM, date(2026, 3, 6)), (T.THIRD_PARTY, date(2026, 2, 4)),
])
def test_hipaa_due_dates(app, people, make_request, request_type, due):
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    ref = submit(make_request, people["requester"], at("2026-01-05"), request_type)
    with app.app_context():
        req = _load(ref)
        assert req.clock_policy == "hipaa" and req.due_on == due


def test_receipt_day_is_the_facility_local_day(app, people, make_request):
    late = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # 23:30 on 1 March in Los Angeles
    ref = submit(make_request, people["requester"], late)
    with app.app_context():
        req = _load(ref)
        assert deadlines.due_date(req).received_on == date(2026, 3, 1)
        assert req.due_on == date(2026, 3, 16)
        assert req.human_ref.startswith("RR-2026-")


def test_policy_is_fixed_when_the_request_is_received(app, people, make_request):
    ref = submit(make_request, people["requester"], at("2026-01-05"))
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    with app.app_context():
        assert deadlines.due_date(_load(ref)).due_on == date(2026, 1, 20)


def _move(req, target, actor, moment, **move):
    with time_machine.travel(moment, tick=False):
        services.transition(req, target, actor, MoveInput(**move))
        db.session.commit()


def test_hipaa_164_524_waiting_is_counted_but_never_moves_the_due_date(app, people, make_request):
    """45 CFR 164.524(b)(2) allows no tolling: two waits of 7 and 3 days are counted and shown, the due
    date stays 30 days from receipt, and a waiting request is still due soon or overdue."""
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    ref = submit(make_request, people["requester"], at("2026-01-05"))
    with app.app_context():
        req, admin, requester = _load(ref), _user(people["admin"]), _user(people["requester"])
        _move(req, S.VERIFYING, admin, at("2026-01-06"))
        _move(req, S.AWAITING_REQUESTER, admin, at("2026-01-10"), message="Which years?")
        assert req.paused_since is not None and req.due_on == date(2026, 2, 4)
        assert deadlines.urgency(req, on=date(2026, 2, 5)) is Urgency.OVERDUE  # the clock runs while waiting
        with time_machine.travel(at("2026-01-17"), tick=False):
            services.reply(req, requester, "2017 and 2018.")
            db.session.commit()
        assert req.status == S.VERIFYING and req.paused_since is None
        assert req.paused_days == 7 and req.due_on == date(2026, 2, 4)
        _move(req, S.AWAITING_REQUESTER, admin, at("2026-01-20"), message="And your former name?")
        _move(req, S.VERIFYING, requester, at("2026-01-23"), message="Sample.")
        assert req.paused_days == 10 and req.due_on == date(2026, 2, 4)
        kinds = {e.kind for e in services.timeline(req, True)}
        assert EventKind.CLOCK_PAUSED not in kinds and EventKind.CLOCK_RESUMED not in kinds
        lines = " ".join(deadlines.explain_due(req))
        assert "waited 10 days" in lines and "does not move the due date" in lines


def test_hipaa_same_day_wait_adds_nothing(app, people, make_request):
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    ref = submit(make_request, people["requester"], at("2026-01-05"))
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        _move(req, S.AWAITING_REQUESTER, admin, at("2026-01-10", 17), message="Which years?")  # 09:00 PST
        _move(req, S.WITHDRAWN, _user(people["requester"]), at("2026-01-11", 1))  # 17:00 PST, same day
        assert req.paused_days == 0 and req.paused_since is None


def test_a_wait_over_local_midnight_counts_one_day_and_moves_nothing(app, people, make_request):
    app.config["RECORDS_CLOCK_POLICY"] = "hipaa"
    ref = submit(make_request, people["requester"], at("2026-01-05"))
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        _move(req, S.AWAITING_REQUESTER, admin, at("2026-01-11", 7), message="Which years?")  # 23:00 PST on 10th
        _move(req, S.SUBMITTED, admin, at("2026-01-11", 9), message="Found them.")  # 01:00 PST on 11th
        assert req.paused_days == 1 and req.due_on == date(2026, 2, 4)


def test_hsc_123110_the_clock_keeps_running_while_waiting(app, people, make_request):
    ref = submit(make_request, people["requester"], at("2026-03-02"))
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        _move(req, S.AWAITING_REQUESTER, admin, at("2026-03-03"), message="Please upload a photo ID.")
        assert deadlines.urgency(req, on=date(2026, 3, 20)) is Urgency.OVERDUE
        lines = deadlines.explain_due(req)
        assert any("keeps running" in line and "123110" in line for line in lines)
        with time_machine.travel(at("2026-03-12"), tick=False):
            services.reply(req, _user(people["requester"]), "Uploaded.")
            db.session.commit()
        assert req.paused_days == 9 and req.due_on == date(2026, 3, 17)


@pytest.mark.parametrize("policy, received, falls_on, due, moved", [
    # 15 calendar days (H&S 123110) ending on Saturday 2026-03-21: moved to Monday 23 (CCP §12a).
    ("california", "2026-03-06", date(2026, 3, 21), date(2026, 3, 23), True),
    # ... ending on Cesar Chavez Day, Tuesday 2026-03-31: moved to Wednesday 1 April.
    ("california", "2026-03-16", date(2026, 3, 31), date(2026, 4, 1), True),
    # The federal 30 days ending on Sunday 2026-03-22 stay on that day: nothing moves a federal deadline.
    ("hipaa", "2026-02-20", date(2026, 3, 22), date(2026, 3, 22), False),
])
def test_ccp_12a_a_weekend_or_holiday_due_date_is_explained(app, people, make_request, policy, received,
                                                             falls_on, due, moved):
    """California Code of Civil Procedure §§12a, 135: a state deadline whose last day is a Saturday,
    Sunday or holiday runs to the next working day; a federal one is not moved. The page says which."""
    app.config["RECORDS_CLOCK_POLICY"] = policy
    ref = submit(make_request, people["requester"], at(received))
    with app.app_context():
        req = _load(ref)
        computed = deadlines.due_date(req)
        assert (computed.falls_on, computed.due_on, computed.moved) == (falls_on, due, moved)
        assert req.due_on == due
        lines = " ".join(deadlines.explain_due(req))
        if moved:
            assert "moves to the next working day" in lines and "§§12a, 135" in lines
        else:
            assert "is not moved to the next working day" in lines


@pytest.mark.parametrize("policy, request_type, received, due, extended", [
    ("california", T.ACCOUNTING, "2026-03-02", date(2026, 5, 1), date(2026, 5, 31)),
    ("california", T.ADDENDUM, "2026-03-02", date(2026, 5, 1), date(2026, 5, 31)),
    ("hipaa", T.COPY, "2026-01-05", date(2026, 2, 4), date(2026, 3, 6)),
    ("hipaa", T.INSPECTION, "2026-01-05", date(2026, 2, 4), date(2026, 3, 6)),
])
def test_one_extension_where_the_rule_allows(app, people, make_request, policy, request_type, received, due,
                                             extended):
    app.config["RECORDS_CLOCK_POLICY"] = policy
    ref = submit(make_request, people["requester"], at(received), request_type)
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        assert req.due_on == due
        with time_machine.travel(at(due.isoformat()), tick=False):  # on the due date itself: still in time
            services.extend(req, admin, "The records are in off-site storage.")
            db.session.commit()
        assert req.due_on == extended and req.extended_days == 30
        notice = [e for e in services.timeline(req, False) if e.kind == EventKind.EXTENDED]
        assert len(notice) == 1 and "off-site storage" in describe(notice[0], "en").text
        assert "records_extended" in db.session.execute(select(OutboxMessage.kind)).scalars().all()
        mail = db.session.execute(select(OutboxMessage.body).where(OutboxMessage.kind == "records_extended"))
        assert "off-site" not in mail.scalar_one()  # the reason is read after signing in, not in the e-mail
        lines = " ".join(deadlines.explain_due(req))
        assert "extended once by 30 days (45 CFR §164.52" in lines


def _refused_extension(app, people, make_request, *, policy="california", request_type=T.ACCOUNTING,
                       received="2026-03-02", on="2026-03-10", reason="Off site.", first=None):
    """Try an extension at ``on``; return the error shown, after checking nothing changed."""
    app.config["RECORDS_CLOCK_POLICY"] = policy
    ref = submit(make_request, people["requester"], at(received), request_type)
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        if first:
            with time_machine.travel(at(first), tick=False):
                services.extend(req, admin, "First delay.")
                db.session.commit()
        before = (req.due_on, req.extended_days, req.version, _count(RequestEvent), _count(OutboxMessage),
                  _count(AuditEvent))
        with time_machine.travel(at(on), tick=False):
            with pytest.raises(RequestInvalid) as excinfo:
                services.extend(req, admin, reason)
        db.session.rollback()
        req = _load(ref)
        after = (req.due_on, req.extended_days, req.version, _count(RequestEvent), _count(OutboxMessage),
                 _count(AuditEvent))
        assert after == before
        return excinfo.value.errors["reason"]


def test_extension_after_the_due_date_is_refused(app, people, make_request):
    message = _refused_extension(app, people, make_request, on="2026-05-02")
    assert "before the due date" in message


def test_a_second_extension_is_refused(app, people, make_request):
    message = _refused_extension(app, people, make_request, first="2026-03-05", on="2026-03-10")
    assert "only one extension" in message


@pytest.mark.parametrize("policy, request_type", [
    ("california", T.COPY), ("california", T.INSPECTION), ("california", T.THIRD_PARTY),
    ("hipaa", T.THIRD_PARTY),
])
def test_an_extension_the_rule_does_not_allow_is_refused(app, people, make_request, policy, request_type,
                                                         monkeypatch):
    if request_type == T.THIRD_PARTY:  # a paper copy to a third party: the facility's target, no extension
        monkeypatch.setitem(BY_TYPE, T.THIRD_PARTY, {**THIRD_PARTY, "record_format": "paper"})
    message = _refused_extension(app, people, make_request, policy=policy, request_type=request_type,
                                 on="2026-03-04")
    assert "allows no extension" in message


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_an_extension_without_a_reason_is_refused(app, people, make_request, reason):
    message = _refused_extension(app, people, make_request, reason=reason)
    assert "reason" in message


def test_an_oversize_extension_reason_is_refused(app, people, make_request):
    message = _refused_extension(app, people, make_request, reason="x" * 50_000)
    assert "under" in message


@pytest.mark.parametrize("today, expected", [
    ("2026-03-17", Urgency.DUE_SOON),  # due today
    ("2026-03-14", Urgency.DUE_SOON),  # exactly 3 days before
    ("2026-03-13", Urgency.ON_TRACK),  # 4 days before
    ("2026-03-18", Urgency.OVERDUE),  # due yesterday
])
def test_service_urgency_on_the_frozen_day(app, people, make_request, today, expected):
    ref = submit(make_request, people["requester"], at("2026-03-02"))
    with app.app_context():
        req = _load(ref)
        with time_machine.travel(at(today), tick=False):
            assert deadlines.urgency(req) is expected


def test_urgency_of_a_closed_request_is_none(app, people, make_request):
    ref = submit(make_request, people["requester"], at("2026-03-02"))
    with app.app_context():
        req = _load(ref)
        _move(req, S.WITHDRAWN, _user(people["requester"]), at("2026-03-03"))
        assert deadlines.urgency(req, on=date(2026, 4, 1)) is None


def test_explain_due_cites_the_rule(app, people, make_request):
    copy_ref = submit(make_request, people["requester"], at("2026-03-02"))
    inspection_ref = submit(make_request, people["requester"], at("2026-11-25"), T.INSPECTION)
    with app.app_context():
        lines = deadlines.explain_due(_load(copy_ref))
        assert "15 calendar days" in lines[1] and "Health & Safety Code §123110" in lines[1]
        assert "2026" in lines[0] and "2026" in lines[-1] and lines[-1].startswith("Due on")
        text = " ".join(deadlines.explain_due(_load(inspection_ref)))
        assert "5 working days" in text and "holidays" in text and "123110" in text


def test_review_of_a_denial_has_its_own_clock(app, people, make_request, make_user):
    ref = submit(make_request, people["requester"], at("2026-03-02"))
    with app.app_context():
        req, admin = _load(ref), _user(people["admin"])
        _move(req, S.VERIFYING, admin, at("2026-03-03"))
        _move(req, S.DENIED, admin, at("2026-03-04"), reason="endangerment")
        assert not req.is_open
        _move(req, S.REVIEW_REQUESTED, _user(people["requester"]), at("2026-03-20"))
        assert req.is_open and req.due_on == date(2026, 4, 19)
        assert "review was requested" in deadlines.explain_due(req)[0]


def test_due_date_never_in_the_past_of_receipt():
    for policy in clocks.build_policies().values():
        for rule in policy.rules.values():
            start = date(2026, 1, 1)
            for offset in range(0, 366, 7):
                day = start + timedelta(days=offset)
                assert clocks.compute_due(rule, day).due_on > day
