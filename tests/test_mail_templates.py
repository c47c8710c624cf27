"""One way to write an e-mail (issue 19): every template in templates/email renders in English and
Spanish with a one-line subject and a body; a template without its subject line is refused; an
account is written to in its own language, whoever causes the e-mail."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask_babel import force_locale

from intake.extensions import db
from intake.notify.mail import MailTemplateError, compose, send_mail
from intake.users.models import Role, User

TEMPLATES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "templates" / "email").glob("*.txt"))
CONTEXT = {"link": "https://records.example.org/x", "lifetime": "1 day", "reset_link": "https://r.example.org/reset",
           "sign_in": "https://r.example.org/login", "threshold": 5, "minutes": 15, "seq": 7, "line": "anchor-line",
           "human_ref": "RR-2026-MZ6R", "expires_on": "June 1, 2027", "downloads": 5, "by_phone": True,
           "notice": [("en", "This record which has been disclosed to you")],
           "ref": "RR-2026-TEST", "overdue": 1, "soon": 2, "digest": "- RR-2026-TEST | Copy", "failures": ""}
STAFF_ONLY = {"audit_anchor", "records_digest"}  # addressed to staff, not signed by the facility


def test_the_templates_are_found():
    assert {"reset_password", "verify_email", "account_locked", "staff_invitation", "audit_anchor"} <= set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_template_has_a_subject_line_and_a_body(app, template, language):
    with app.test_request_context(), force_locale(language):
        subject, body = compose(template, **CONTEXT)
    assert subject and "\n" not in subject and "{{" not in subject
    assert body.strip() and body.endswith("\n") and "{{" not in body and "{%" not in body
    assert "The Canyon at Peace Park" in subject + body or template in STAFF_ONLY


def test_spanish_readers_get_spanish_mail(app):
    with app.test_request_context(), force_locale("es"):
        subject, body = compose("reset_password", **CONTEXT)
    assert subject.startswith("Restablezca") or "contraseña" in subject, subject
    assert "https://records.example.org/x" in body


def test_a_template_without_its_subject_is_refused(app, monkeypatch):
    broken = {"email/no_blank_line.txt": "A subject\nand a body with no blank line between\n",
              "email/two_line_subject.txt": "A subject\non two lines\n\nThe body\n",
              "email/empty.txt": "\n\n"}
    real = app.jinja_env.get_template
    monkeypatch.setattr(app.jinja_env, "get_template",
                        lambda name: app.jinja_env.from_string(broken[name]) if name in broken else real(name))
    for name in broken:
        with app.test_request_context(), pytest.raises(MailTemplateError, match="first paragraph must be the subject"):
            compose(name.removeprefix("email/").removesuffix(".txt"))


def test_an_account_is_written_to_in_its_own_language(app, make_user):
    reader = make_user(Role.REQUESTER)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        user = db.session.get(User, reader.id)
        user.locale = "es"
        message = send_mail("verify_email", user, link="https://r.example.org/v", lifetime="1 día")
        db.session.commit()
        assert message.recipient == reader.email and message.kind == "verify_email"
        assert "Confirme" in message.subject or "confirme" in message.subject.lower(), message.subject
