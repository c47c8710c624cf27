"""Resource directory: staff search and read it, admins add, edit, retire, reactivate and verify
(each audited); search semantics; the JSON contract the call form's picker relies on; hostile input."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.db_types import utcnow
from intake.extensions import db
from intake.resources import services
from intake.resources.labels import KIND_LABELS, PAYER_LABELS
from intake.resources.models import PAYERS, Resource, ResourceKind
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, csrf_token, login

VALID = {
    "name": "Malibu Detox Center",
    "kind": "detox",
    "phone": "(310) 555-0100",
    "website": "https://detox.example.org/intake",
    "address": "1 Pacific Coast Hwy",
    "city": "Malibu",
    "state": "ca",
    "zip": "90265",
    "payers": ["private", "medi_cal"],
    "description": "Medically supervised benzodiazepine taper.\nAdults only.",
}


def signed_in(app, make_user, role):
    user = make_user(role)
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    client.user = user
    return client


@pytest.fixture()
def admin_client(app, make_user):
    return signed_in(app, make_user, Role.ADMIN)


@pytest.fixture()
def operator_client(app, make_user):
    return signed_in(app, make_user, Role.OPERATOR)


def add(app, name="Harbor Outpatient", **values) -> int:
    """A resource straight into the database; returns its id."""
    values = {"kind": ResourceKind.OUTPATIENT, "payers": "", **values}
    with app.app_context():
        resource = Resource(name=name, **values)
        db.session.add(resource)
        db.session.commit()
        return resource.id


def fetch(app, resource_id) -> Resource | None:
    with app.app_context():
        resource = db.session.get(Resource, resource_id)
        if resource is not None:
            db.session.expunge(resource)
        return resource


def resource_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Resource)).scalar_one()


def audit_rows(app, action=None) -> list[AuditEvent]:
    with app.app_context():
        stmt = select(AuditEvent).order_by(AuditEvent.seq)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        rows = db.session.execute(stmt).scalars().all()
        db.session.expunge_all()
        return rows


def form_post(client, path, data, token_from="/resources/new", csrf=True):
    body = dict(data)
    if csrf:
        body["csrf_token"] = csrf_token(client, token_from)
    return client.post(path, data=body)


def action_post(client, path):
    return client.post(path, data={"csrf_token": csrf_token(client, "/resources/")})


def names_in(page: str) -> list[str]:
    return re.findall(r'<a href="/resources/\d+">([^<]+)</a>', page)


def search_json(client, **params):
    response = client.get("/resources/search.json", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["name"] for r in response.get_json()["results"]]


# --- who may do what ----------------------------------------------------------------------

def test_operators_search_and_read_but_cannot_change(app, operator_client):
    rid = add(app, "Harbor Outpatient", city="Long Beach")
    before_audit = len(audit_rows(app))

    listing = operator_client.get("/resources/?q=harbor")
    assert listing.status_code == 200
    assert "Harbor Outpatient" in names_in(listing.get_data(as_text=True))
    assert operator_client.get(f"/resources/{rid}").status_code == 200
    assert search_json(operator_client, q="harb") == ["Harbor Outpatient"]
    assert "Add a resource" not in listing.get_data(as_text=True)
    assert "Retire" not in operator_client.get(f"/resources/{rid}").get_data(as_text=True)

    token = csrf_token(operator_client, "/resources/")
    assert operator_client.get("/resources/new").status_code == 403
    assert operator_client.get(f"/resources/{rid}/edit").status_code == 403
    for path in ("/resources/new", f"/resources/{rid}/edit"):
        assert operator_client.post(path, data={**VALID, "csrf_token": token}).status_code == 403
    for action in ("retire", "reactivate", "verified"):
        assert operator_client.post(f"/resources/{rid}/{action}", data={"csrf_token": token}).status_code == 403

    kept = fetch(app, rid)
    assert kept.active and kept.last_verified_at is None and kept.city == "Long Beach"
    assert resource_count(app) == 1
    assert len(audit_rows(app)) == before_audit


@pytest.mark.parametrize("role", ["anonymous", Role.REQUESTER])
def test_requesters_and_visitors_are_kept_out(app, make_user, role):
    rid = add(app)
    client = app.test_client() if role == "anonymous" else signed_in(app, make_user, role)
    token = csrf_token(client, "/login" if role == "anonymous" else "/account")
    gets = ["/resources/", "/resources/?q=harbor", "/resources/search.json?q=harbor", f"/resources/{rid}",
            "/resources/new", f"/resources/{rid}/edit"]
    posts = ["/resources/new", f"/resources/{rid}/edit", f"/resources/{rid}/retire",
             f"/resources/{rid}/reactivate", f"/resources/{rid}/verified"]
    responses = [client.get(p) for p in gets] + [client.post(p, data={**VALID, "csrf_token": token}) for p in posts]
    for response in responses:
        if role == "anonymous":
            assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        else:
            assert response.status_code == 403
            assert "Harbor Outpatient" not in response.get_data(as_text=True)
    assert fetch(app, rid).active and resource_count(app) == 1


def test_the_navbar_links_the_directory_for_staff_only(app, operator_client, make_user):
    assert 'href="/resources/"' in operator_client.get("/account").get_data(as_text=True)
    requester = signed_in(app, make_user, Role.REQUESTER)
    assert 'href="/resources/"' not in requester.get("/account").get_data(as_text=True)


# --- admins change the directory ------------------------------------------------------------

def test_admin_adds_a_resource(app, admin_client):
    response = form_post(admin_client, "/resources/new", {**VALID, "verified": "y"})
    assert response.status_code == 302
    rid = int(response.headers["Location"].rsplit("/", 1)[1])
    resource = fetch(app, rid)
    assert resource.name == "Malibu Detox Center"
    assert resource.kind == ResourceKind.DETOX
    assert resource.state == "CA"
    assert resource.payers == "medi_cal,private"  # the order of PAYERS, whatever the form sent
    assert resource.description == VALID["description"]
    assert resource.active
    assert utcnow() - resource.last_verified_at < timedelta(minutes=1)

    events = audit_rows(app, "resource.created")
    assert len(events) == 1
    assert events[0].object_type == "resource" and events[0].object_id == str(rid)
    assert events[0].actor_id == admin_client.user.id
    assert "Malibu" not in events[0].details  # the event says what happened, not the content

    page = admin_client.get(f"/resources/{rid}").get_data(as_text=True)
    assert 'href="tel:3105550100"' in page
    assert 'href="https://detox.example.org/intake"' in page
    assert "Medi-Cal, Private insurance" in page
    assert "not verified in over a year" not in page


def test_a_resource_added_without_the_tick_is_not_verified(app, admin_client):
    response = form_post(admin_client, "/resources/new", {"name": "Bare Minimum", "kind": "other"})
    assert response.status_code == 302
    resource = fetch(app, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert resource.last_verified_at is None
    assert resource.phone is None and resource.zip is None and resource.payers == ""
    assert json.loads(audit_rows(app, "resource.created")[0].details) == {"verified": False}


def test_admin_edits_a_resource(app, admin_client):
    rid = add(app, "Harbor Outpatient", city="Long Beach", phone="562 555 0101", payers="free")
    page = admin_client.get(f"/resources/{rid}/edit").get_data(as_text=True)
    assert 'value="Harbor Outpatient"' in page and 'value="Long Beach"' in page
    assert re.search(r'<input checked[^>]*value="free"|<input[^>]*value="free"[^>]*checked', page)

    data = {**VALID, "name": "Harbor Outpatient", "kind": "outpatient", "city": "San Pedro", "phone": "",
            "payers": ["free", "sliding_scale"]}
    response = form_post(admin_client, f"/resources/{rid}/edit", data, token_from=f"/resources/{rid}/edit")
    assert response.status_code == 302 and response.headers["Location"] == f"/resources/{rid}"
    resource = fetch(app, rid)
    assert resource.city == "San Pedro"
    assert resource.phone is None  # a blanked field is cleared, not kept
    assert resource.payers == "sliding_scale,free"
    assert resource.last_verified_at is None  # not ticked

    events = audit_rows(app, "resource.updated")
    assert len(events) == 1 and events[0].object_id == str(rid)
    changed = json.loads(events[0].details)["fields"]
    assert {"city", "phone", "payers"} <= set(changed) and "name" not in changed and "kind" not in changed


def test_saving_an_unchanged_form_writes_nothing(app, admin_client):
    response = form_post(admin_client, "/resources/new", VALID)
    rid = int(response.headers["Location"].rsplit("/", 1)[1])
    before = len(audit_rows(app))
    response = form_post(admin_client, f"/resources/{rid}/edit", VALID, token_from=f"/resources/{rid}/edit")
    assert response.status_code == 302
    assert len(audit_rows(app)) == before
    assert "Nothing changed." in admin_client.get(f"/resources/{rid}").get_data(as_text=True)


def test_ticking_verified_on_edit_stamps_the_date(app, admin_client):
    rid = add(app, "Harbor Outpatient")
    data = {"name": "Harbor Outpatient", "kind": "outpatient", "verified": "y"}
    response = form_post(admin_client, f"/resources/{rid}/edit", data, token_from=f"/resources/{rid}/edit")
    assert response.status_code == 302
    assert utcnow() - fetch(app, rid).last_verified_at < timedelta(minutes=1)
    assert json.loads(audit_rows(app, "resource.updated")[0].details)["fields"] == ["last_verified_at"]


def test_retired_resources_leave_search_and_list(app, admin_client, operator_client):
    rid = add(app, "Harbor Outpatient")
    add(app, "Harbor Lights Detox", kind=ResourceKind.DETOX)
    assert action_post(admin_client, f"/resources/{rid}/retire").headers["Location"] == f"/resources/{rid}"
    assert fetch(app, rid).active is False

    for client in (admin_client, operator_client):
        assert names_in(client.get("/resources/").get_data(as_text=True)) == ["Harbor Lights Detox"]
        assert search_json(client, q="harbor") == ["Harbor Lights Detox"]
    # Only admins may ask for retired entries; an operator's request for them is ignored.
    with_retired = admin_client.get("/resources/?include_retired=1").get_data(as_text=True)
    assert names_in(with_retired) == ["Harbor Lights Detox", "Harbor Outpatient"]
    assert "retired" in with_retired
    page = operator_client.get("/resources/?include_retired=1").get_data(as_text=True)
    assert names_in(page) == ["Harbor Lights Detox"]
    assert search_json(admin_client, q="harbor", include_retired="1") == ["Harbor Lights Detox"]
    # Its page stays, for the calls that referred to it.
    page = operator_client.get(f"/resources/{rid}")
    assert page.status_code == 200 and "This resource is retired" in page.get_data(as_text=True)

    action_post(admin_client, f"/resources/{rid}/retire")  # twice: no second event
    assert len(audit_rows(app, "resource.retired")) == 1
    assert action_post(admin_client, f"/resources/{rid}/reactivate").status_code == 302
    assert fetch(app, rid).active is True
    assert search_json(operator_client, q="harbor") == ["Harbor Lights Detox", "Harbor Outpatient"]
    events = audit_rows(app, "resource.reactivated")
    assert len(events) == 1 and events[0].object_id == str(rid) and events[0].actor_id == admin_client.user.id


def test_mark_verified(app, admin_client):
    rid = add(app, "Harbor Outpatient")
    old = add(app, "Old Program", last_verified_at=utcnow() - timedelta(days=400))
    listing = admin_client.get("/resources/").get_data(as_text=True)
    assert listing.count("not verified in over a year") == 2

    assert action_post(admin_client, f"/resources/{rid}/verified").status_code == 302
    stamped = fetch(app, rid).last_verified_at
    assert utcnow() - stamped < timedelta(minutes=1)
    listing = admin_client.get("/resources/").get_data(as_text=True)
    assert listing.count("not verified in over a year") == 1
    assert stamped.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y-%m-%d") in listing  # the facility's day
    events = audit_rows(app, "resource.verified")
    assert [e.object_id for e in events] == [str(rid)]
    assert fetch(app, old).last_verified_at < stamped - timedelta(days=399)


def test_every_kind_and_payer_has_a_label():
    assert set(KIND_LABELS) == set(ResourceKind)
    assert set(PAYER_LABELS) == set(PAYERS)


def test_staleness_is_a_year(app):
    now = utcnow()
    assert services.is_stale(Resource(last_verified_at=None), now)
    assert services.is_stale(Resource(last_verified_at=now - timedelta(days=366)), now)
    assert not services.is_stale(Resource(last_verified_at=now - timedelta(days=364)), now)


def test_unknown_resources_are_404_to_admins(admin_client):
    token = csrf_token(admin_client, "/resources/")
    assert admin_client.get("/resources/999").status_code == 404
    assert admin_client.post("/resources/999/edit", data={**VALID, "csrf_token": token}).status_code == 404
    assert admin_client.get("/resources/99999999999").status_code == 404  # beyond an integer column


# --- search ---------------------------------------------------------------------------------

def test_search_matches_name_city_and_zip_in_any_case(app, operator_client):
    add(app, "Harbor Outpatient", city="Long Beach", zip="90802")
    add(app, "desert sober living", city="Palm Springs", zip="92262", kind=ResourceKind.RESIDENTIAL)
    add(app, "Canyon Crisis Line", kind=ResourceKind.CRISIS_LINE)
    assert search_json(operator_client, q="HARBOR out") == ["Harbor Outpatient"]
    assert search_json(operator_client, q="sober") == ["desert sober living"]
    assert search_json(operator_client, q="palm spr") == ["desert sober living"]
    assert search_json(operator_client, q="9080") == ["Harbor Outpatient"]
    assert search_json(operator_client, q="in") == ["Canyon Crisis Line", "desert sober living"]  # by name
    assert search_json(operator_client, q="in", kind="crisis_line") == ["Canyon Crisis Line"]
    assert search_json(operator_client, q="nothing like it") == []
    page = operator_client.get("/resources/?q=LONG+beach").get_data(as_text=True)
    assert names_in(page) == ["Harbor Outpatient"]
    page = operator_client.get("/resources/?kind=residential").get_data(as_text=True)
    assert names_in(page) == ["desert sober living"]
    assert names_in(operator_client.get("/resources/").get_data(as_text=True)) == [
        "Canyon Crisis Line", "desert sober living", "Harbor Outpatient"]  # by name, any case


@pytest.mark.parametrize("blank", [" ", "\r\n", "\t "])
def test_a_blank_kind_means_any_kind_not_a_500(app, operator_client, blank):
    """Found by the fuzz (tests/fuzz): Optional() let a whitespace kind through and the view made
    a ResourceKind of it."""
    add(app, "Harbor Outpatient")
    add(app, "Canyon Crisis Line", kind=ResourceKind.CRISIS_LINE)
    response = operator_client.get("/resources/", query_string={"kind": blank})
    assert response.status_code == 200
    assert names_in(response.get_data(as_text=True)) == ["Canyon Crisis Line", "Harbor Outpatient"]
    assert search_json(operator_client, q="harbor", kind=blank) == ["Harbor Outpatient"]


def test_percent_and_underscore_are_literal(app, ctx):
    add(app, "100% Recovery")
    add(app, "1000 Oaks Recovery")
    add(app, "A_B Center")
    add(app, "AxB Center")
    assert [r.name for r in services.search_resources("0%")] == ["100% Recovery"]
    assert [r.name for r in services.search_resources("%")] == ["100% Recovery"]
    assert [r.name for r in services.search_resources("a_b")] == ["A_B Center"]
    assert [r.name for r in services.search_resources("_")] == ["A_B Center"]
    assert [r.name for r in services.search_resources("' OR 1=1 --")] == []
    assert len(services.search_resources("")) == 4


def test_search_is_limited(app, ctx):
    for i in range(25):
        add(app, f"Program {i:02d}")
    assert len(services.search_resources("program")) == 20
    assert len(services.search_resources("program", limit=5)) == 5


# --- the JSON contract ----------------------------------------------------------------------

def test_search_json_contract(app, operator_client):
    verified_at = utcnow() - timedelta(days=3)
    rid = add(app, "Harbor Outpatient", city="Long Beach", phone="562 555 0101", last_verified_at=verified_at,
              payers="free", website="https://harbor.example.org")
    other = add(app, "Harbor Taper Clinic", kind=ResourceKind.TAPER_SUPPORT)
    response = operator_client.get("/resources/search.json?q=harbor")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.get_json() == {"results": [
        {"id": rid, "name": "Harbor Outpatient", "kind": "outpatient", "kind_label": "Outpatient",
         "city": "Long Beach", "phone": "562 555 0101", "hours": None, "payers": ["Free"],
         "distance_miles": None, "distance_label": "", "last_verified": verified_at.strftime("%Y-%m-%d")},
        {"id": other, "name": "Harbor Taper Clinic", "kind": "taper_support",
         "kind_label": "Medication-assisted treatment / taper support", "city": None, "phone": None,
         "hours": None, "payers": [], "distance_miles": None, "distance_label": "", "last_verified": None},
    ]}


@pytest.mark.parametrize("query", ["", "h", " h ", None])
def test_search_json_needs_two_characters(app, operator_client, query):
    add(app, "Harbor Outpatient")
    add(app, "H")
    params = {} if query is None else {"q": query}
    response = operator_client.get("/resources/search.json", query_string=params)
    assert response.status_code == 200 and response.get_json() == {"results": []}


def test_search_json_returns_at_most_twenty(app, operator_client):
    for i in range(25):
        add(app, f"Program {i:02d}")
    names = search_json(operator_client, q="program")
    assert names == [f"Program {i:02d}" for i in range(20)]


@pytest.mark.parametrize("params", [{"q": "harbor", "kind": "casino"}, {"q": "har\x00bor"}, {"q": "x" * 101}])
def test_bad_searches_are_400(app, operator_client, params):
    add(app, "Harbor Outpatient")
    response = operator_client.get("/resources/search.json", query_string=params)
    assert response.status_code == 400
    assert response.get_json()["results"] == []
    page = operator_client.get("/resources/", query_string=params)
    assert page.status_code == 400
    assert names_in(page.get_data(as_text=True)) == []
    assert "invalid-feedback" in page.get_data(as_text=True)


# --- bad input ------------------------------------------------------------------------------

BAD_INPUT = [
    ({"name": ""}, "name", "Enter the name."),
    ({"name": "   "}, "name", "Enter the name."),
    ({"name": "x" * 201}, "name", "At most 200 characters."),
    ({"name": "Nul\x00Byte Detox"}, "name", "control characters"),
    ({"kind": ""}, "kind", "Choose the kind of service."),
    ({"kind": "detox' OR 1=1 --"}, "kind", "Choose the kind of service."),
    ({"zip": "9026"}, "zip", "Five digits"),
    ({"zip": "abcde"}, "zip", "Five digits"),
    ({"zip": "' OR 1=1 --"}, "zip", "Five digits"),
    ({"state": "Cal"}, "state", "Two letters"),
    ({"phone": "call us"}, "phone", "Use digits"),
    ({"phone": "<b>555</b>"}, "phone", "Use digits"),
    ({"phone": "1" * 41}, "phone", "At most 40 characters."),
    ({"website": "javascript:alert(1)"}, "website", "starting with https://"),
    ({"website": "JavaScript://example.org/%0aalert(1)"}, "website", "starting with https://"),
    ({"website": "ftp://example.org"}, "website", "starting with https://"),
    ({"website": "https://example.org/\"><script>alert(1)</script>"}, "website", "starting with https://"),
    ({"website": "https://" + "a" * 300}, "website", "At most 300 characters."),
    ({"description": "x" * 100_000}, "description", "At most 2000 characters."),
    ({"description": "x" * 2001}, "description", "At most 2000 characters."),
    ({"description": "bad\x00byte"}, "description", "control characters"),
    ({"city": "Mali\x1bbu"}, "city", "control characters"),
    ({"payers": ["medi_cal", "bitcoin"]}, "payers", "not a valid choice"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUT)
def test_bad_input_is_refused_with_a_message(app, admin_client, change, field, message):
    before_audit = len(audit_rows(app))
    response = form_post(admin_client, "/resources/new", {**VALID, **change})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(rf'id="{field}-error"[^>]*>(.*?)</div>', page, re.S)
    assert error and message in error.group(1)
    assert "<script>alert(1)</script>" not in page  # echoed input is escaped
    assert resource_count(app) == 0
    assert len(audit_rows(app)) == before_audit


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUT[:3] + BAD_INPUT[13:14] + BAD_INPUT[18:19])
def test_bad_input_on_edit_changes_nothing(app, admin_client, change, field, message):
    rid = add(app, "Harbor Outpatient", zip="90802")
    response = form_post(admin_client, f"/resources/{rid}/edit", {**VALID, **change},
                         token_from=f"/resources/{rid}/edit")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    kept = fetch(app, rid)
    assert kept.name == "Harbor Outpatient" and kept.zip == "90802" and kept.website is None
    assert audit_rows(app, "resource.updated") == []


def test_html_and_sql_in_free_text_is_stored_as_text_and_escaped(app, admin_client, operator_client):
    name = "<script>alert(1)</script> Robert'); DROP TABLE resources;--"
    response = form_post(admin_client, "/resources/new",
                         {**VALID, "name": name, "description": "<img src=x onerror=alert(1)>"})
    assert response.status_code == 302
    rid = int(response.headers["Location"].rsplit("/", 1)[1])
    assert fetch(app, rid).name == name
    for page in (operator_client.get("/resources/").get_data(as_text=True),
                 operator_client.get(f"/resources/{rid}").get_data(as_text=True)):
        assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
    assert search_json(operator_client, q="drop table") == [name]


def test_a_website_that_is_not_a_web_address_is_never_a_link(app, operator_client):
    rid = add(app, "Imported Entry", website="javascript:alert(1)")
    page = operator_client.get(f"/resources/{rid}").get_data(as_text=True)
    assert 'href="javascript' not in page.lower()


@pytest.mark.parametrize("path", ["/resources/new", "edit", "retire", "reactivate", "verified"])
def test_missing_csrf_token_is_refused(app, admin_client, path):
    rid = add(app, "Harbor Outpatient")
    target = path if path.startswith("/") else f"/resources/{rid}/{path}"
    before_audit = len(audit_rows(app))
    response = admin_client.post(target, data={**VALID, "verified": "y"})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert resource_count(app) == 1
    kept = fetch(app, rid)
    assert kept.name == "Harbor Outpatient" and kept.active and kept.last_verified_at is None
    assert len(audit_rows(app)) == before_audit


# --- the services on their own --------------------------------------------------------------

def test_services_refuse_non_editors(app, ctx, make_user):
    operator = make_user(Role.OPERATOR)
    rid = add(app)
    resource = db.session.get(Resource, rid)
    with pytest.raises(services.NotAllowed):
        services.create_resource(VALID, operator)
    for change in (services.retire_resource, services.reactivate_resource, services.mark_verified):
        with pytest.raises(services.NotAllowed):
            change(resource, operator)
    with pytest.raises(services.NotAllowed):
        services.update_resource(resource, VALID, operator)


def test_services_check_meaning(app, ctx, make_user):
    admin = make_user(FULL_ADMIN)
    with pytest.raises(services.InvalidResource) as exc:
        services.create_resource({**VALID, "payers": ["bitcoin"]}, admin)
    assert exc.value.field == "payers"
    with pytest.raises(services.InvalidResource) as exc:
        services.create_resource({**VALID, "kind": "casino"}, admin)
    assert exc.value.field == "kind"
    with pytest.raises(services.InvalidResource) as exc:
        services.create_resource({**VALID, "name": "  "}, admin)
    assert exc.value.field == "name"
    assert db.session.execute(select(func.count()).select_from(Resource)).scalar_one() == 0
