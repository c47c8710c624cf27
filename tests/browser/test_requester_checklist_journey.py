"""The requester's checklist (issue 19): a personal representative submits a request through the
form and lands on its page, whose top lists what is still needed (a photo ID, the proof of
authority); they follow the photo ID's link to the upload form, send the ID, and the list shrinks
to the proof of authority, the ID folded away as done; with the proof sent, the page says nothing
more is needed and by when the office answers. Later the office asks a question: it stands above
the answer box, and a document sent in answer takes the request out of "waiting for you".
axe checks every page visited."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from intake.extensions import db
from intake.records import services
from intake.records.models import RecordsRequest, RequestStatus
from intake.records.services import MoveInput
from intake.users.models import User
from tests.browser.conftest import check_accessibility
from tests.browser.test_records_journey import PDF, PNG, sign_in, sign_out, the_request
from tests.browser.test_smoke import path_is
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def send(page: Page, kind: str, path: str) -> None:
    main = page.get_by_role("main")
    upload = main.locator("form", has=page.get_by_role("button", name="Send document"))
    upload.get_by_role("radio", name=kind).check()
    upload.get_by_label("File (PDF, PNG or JPEG)").set_input_files(path)
    upload.get_by_role("button", name="Send document").click()


def test_the_checklist_shrinks_as_the_requester_sends_what_is_needed(page: Page, app: Flask, make_user,
                                                                     tmp_path) -> None:
    requester = make_user("requester")
    admin = make_user("records_clerk")
    main = page.get_by_role("main")
    id_scan = tmp_path / "my-id.png"
    id_scan.write_bytes(PNG)
    authority = tmp_path / "power-of-attorney.pdf"
    authority.write_bytes(PDF)

    sign_in(page, requester.email, PASSWORD)
    page.goto("/my/requests/new")
    page.get_by_label("The patient's full name").fill("Jordan Example")
    dob = page.get_by_role("group", name="The patient's date of birth")
    dob.get_by_label("Day").fill("17")
    dob.get_by_label("Month").fill("5")
    dob.get_by_label("Year").fill("1980")
    page.get_by_role("radio", name=re.compile("^I am the patient's personal representative")).check()
    page.get_by_label("Your own full name").fill("Sam Example")
    page.get_by_role("radio", name=re.compile("^A copy of my records")).check()
    page.get_by_role("radio", name="Secure download from this site").check()
    page.get_by_role("checkbox", name=re.compile("^I confirm that the information is true")).check()
    page.get_by_label("Type your full name as your signature").fill("Sam Example")
    main.get_by_role("button", name="Submit the request").click()

    req = the_request(app)
    expect(page).to_have_url(path_is(f"/my/requests/{req.reference}"))
    checklist = main.locator("#checklist")
    todo = checklist.locator("#checklist-todo > li")
    expect(checklist.get_by_role("heading", name="What we still need from you")).to_be_visible()
    expect(todo).to_have_count(2)
    expect(todo.nth(0)).to_contain_text("A photo ID")
    expect(todo.nth(1)).to_contain_text("Proof that you may act for the patient")
    check_accessibility(page)

    # The item's action leads to the upload form.
    checklist.get_by_role("link", name="Send your photo ID").click()
    expect(page).to_have_url(re.compile(r"#upload-heading$"))
    send(page, "Photo ID", str(id_scan))
    expect(main.get_by_text("my-id.png")).to_be_visible()
    expect(todo).to_have_count(1)
    expect(todo.first).to_contain_text("Proof that you may act for the patient")
    done = checklist.locator("#checklist-done")
    expect(done).to_contain_text("Already done (1)")
    expect(done.get_by_text("A photo ID")).to_be_hidden()  # folded away
    done.locator("summary").click()
    expect(done.get_by_text("A photo ID")).to_be_visible()
    check_accessibility(page)

    send(page, "Proof of authority to act for the patient", str(authority))
    expect(todo).to_have_count(0)
    expect(checklist.get_by_role("heading", name="Nothing more is needed from you")).to_be_visible()
    expect(checklist.locator("#next-step")).to_contain_text("We will answer by")
    check_accessibility(page)
    sign_out(page)

    # The office asks a question; the requester answers it with a document.
    with app.app_context():
        record = db.session.get(RecordsRequest, req.id)
        staff = db.session.get(User, admin.id)
        services.transition(record, RequestStatus.VERIFYING, staff)
        services.transition(record, RequestStatus.AWAITING_REQUESTER, staff,
                            MoveInput(message="The ID is hard to read: please send a sharper copy."))
        db.session.commit()
    sign_in(page, requester.email, PASSWORD)
    page.goto(f"/my/requests/{req.reference}")
    reply = main.locator("#reply")
    expect(reply.locator("#question")).to_contain_text("please send a sharper copy")
    expect(reply.get_by_label("Your message")).to_be_visible()
    expect(todo.first).to_contain_text("Your answer to our question")
    check_accessibility(page)
    send(page, "Photo ID", str(id_scan))
    expect(main.locator("#status")).to_have_text("Checking identity")
    expect(main.locator("#reply")).to_have_count(0)
    with app.app_context():
        assert db.session.get(RecordsRequest, req.id).status == RequestStatus.VERIFYING
