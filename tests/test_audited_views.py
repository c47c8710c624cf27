"""Audited page views write their event after the page is drawn (intake/audit/services.py,
``pending_view``): while the page is drawn no lock of the trail is held (on SQLite the transaction
is still a deferred read; on PostgreSQL no advisory lock is taken yet), the view is still recorded
for every page served, with the moment the panel shows, and a page whose record fails is never sent."""

from __future__ import annotations

import pytest
from flask import template_rendered
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.audit.services import verify_chain
from intake.database import _READING
from intake.extensions import db
from intake.records import services
from intake.records.models import RecordsRequest
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, login


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN)}


def _views(app, reference: str) -> list[AuditEvent]:
    with app.app_context():
        req_id = db.session.execute(select(RecordsRequest.id).where(RecordsRequest.reference == reference)).scalar_one()
        return list(db.session.execute(select(AuditEvent).where(
            AuditEvent.action == "request.viewed", AuditEvent.object_id == str(req_id))).scalars())


@pytest.fixture()
def while_drawing(app):
    """What the trail and the transaction looked like at the moment each page was drawn."""
    seen: list[dict] = []

    def listener(sender, template, context, **extra):
        if not template.name.startswith("records/"):
            return
        connection = db.session.connection()
        seen.append({
            "views": db.session.execute(select(AuditEvent.seq).where(AuditEvent.action == "request.viewed")).all(),
            "reading": connection.info.get(_READING) if connection.dialect.name == "sqlite" else None,
            "pending": [e for e in db.session.new if isinstance(e, AuditEvent)],
        })

    template_rendered.connect(listener, app)
    yield seen
    template_rendered.disconnect(listener, app)


@pytest.mark.parametrize("who", ["admin", "requester"])
def test_the_view_is_recorded_after_the_page_is_drawn_and_for_every_view(app, client, people, make_request,
                                                                       while_drawing, who):
    ref = make_request(people["requester"])
    assert login(client, people[who].email).status_code == 302
    path = f"/queue/requests/{ref}" if who == "admin" else f"/my/requests/{ref}"
    for n in (1, 2, 3):
        assert client.get(path).status_code == 200
        assert len(_views(app, ref)) == n  # recorded, every time
    assert len(while_drawing) == 3
    for k, drawn in enumerate(while_drawing):
        assert len(drawn["views"]) == k and not drawn["pending"]  # not written yet while drawing
        if drawn["reading"] is not None:
            assert drawn["reading"] is True  # SQLite: still the deferred read, no write lock held
    with app.app_context():
        assert verify_chain().ok


def test_the_panel_shows_this_view_as_the_trail_records_it(app, client, people, make_request, monkeypatch):
    ref = make_request(people["requester"])
    assert login(client, people["admin"].email).status_code == 302
    shown = {}
    original = services.record_view

    def spy(req, viewer, occurred_at=None):
        shown["at"] = occurred_at
        return original(req, viewer, occurred_at=occurred_at)

    monkeypatch.setattr(services, "record_view", spy)
    html = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    panel = html[html.index("Who viewed this"):]
    assert people["admin"].display_name in panel
    (event,) = _views(app, ref)
    assert event.occurred_at == shown["at"]  # the moment the panel was drawn with


def test_a_page_whose_view_cannot_be_recorded_is_never_sent(app, client, people, make_request, monkeypatch):
    ref = make_request(people["requester"])
    assert login(client, people["admin"].email).status_code == 302

    def broken(*args, **kwargs):
        raise RuntimeError("the trail cannot be written")

    monkeypatch.setattr(services, "record_view", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get(f"/queue/requests/{ref}")
    assert response.status_code == 500
    assert "Who viewed this" not in response.get_data(as_text=True)
    assert _views(app, ref) == []
