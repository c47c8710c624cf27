"""The page's frame is drawn once per state and kept (intake/frame.py, intake/navigation.py): each
person still gets the menu of their own roles, in their own language, with their own counts, and each
response its own CSRF token, address and CSP nonce, escaped."""

from __future__ import annotations

import re

from flask import render_template_string

from intake.frame import frame_marks
from intake.navigation import main_menu
from intake.users.models import Role
from tests.conftest import csrf_token, login

MARKS = (frame_marks.csrf, frame_marks.next, frame_marks.nonce, frame_marks.sign_in)


def _page(client, path: str = "/account") -> str:
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert not any(mark in html for mark in MARKS)
    return html


def test_each_person_gets_the_menu_of_their_own_roles(app, make_user):
    operator, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    first, second = app.test_client(), app.test_client()
    assert login(first, operator.email).status_code == 302
    assert login(second, admin.email).status_code == 302
    for _ in range(2):  # asked in turn: the second of each is served from the kept frame
        as_operator, as_admin = _page(first), _page(second)
        assert 'id="nav-log-call"' in as_operator and 'id="nav-admin"' not in as_operator
        assert 'id="nav-admin"' in as_admin
    assert 'id="nav-admin"' not in _page(app.test_client(), "/")  # a visitor: no menu at all


def test_the_kept_header_signs_out_with_this_sessions_token(app, client, make_user):
    login(client, make_user(Role.OPERATOR).email)
    _page(client)
    html = _page(client)  # the kept frame
    form = re.search(r'action="/logout"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html)
    assert form is not None
    assert client.post("/logout", data={"csrf_token": form.group(1)}).status_code in (302, 303)
    assert client.get("/account").status_code == 302  # signed out


def test_the_switch_returns_to_this_page_escaped(app, client):
    html = _page(client, "/?a=1&b=%22x%22")
    assert 'name="next" value="/?a=1&amp;b=%22x%22"' in html
    other = _page(client, "/records")
    assert 'name="next" value="/records"' in other


def test_every_script_carries_this_responses_nonce(app, client, make_user):
    login(client, make_user(Role.OPERATOR).email)
    nonces = set()
    for _ in range(2):
        response = client.get("/account")
        policy = response.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        scripts = re.findall(r"<script [^>]*nonce=\"([^\"]+)\"", response.get_data(as_text=True))
        assert scripts and set(scripts) == {nonce}
        nonces.add(nonce)
    assert len(nonces) == 2


def test_the_frame_follows_the_language(app, client, make_user):
    login(client, make_user(Role.REQUESTER).email)
    english = _page(client, "/my/requests/")
    response = client.post("/language", data={"lang": "es", "next": "/my/requests/",
                                              "csrf_token": csrf_token(client, "/my/requests/")})
    assert response.status_code == 303
    spanish = _page(client, "/my/requests/")
    assert 'lang="en"' in english and "Sign out" in english
    assert 'lang="es"' in spanish and "Sign out" not in spanish and "Cerrar sesión" in spanish


def test_a_menu_is_kept_per_count(app, make_user):
    supervisor = make_user(Role.SUPERVISOR)
    with app.test_request_context("/"):
        from intake.extensions import db
        from intake.users.models import User

        user = db.session.get(User, supervisor.id)
        counts = [link.count for menu in (main_menu(user, lambda: 0, lambda: 0, 99),
                                          main_menu(user, lambda: 3, lambda: 0, 99),
                                          main_menu(user, lambda: 0, lambda: 0, 99))
                  for group in menu.groups for link in group.links if link.id == "nav-urgent"]
        assert counts == [0, 3, 0]


def test_a_kept_frame_draws_only_what_its_state_holds(app):
    with app.test_request_context("/"):
        template = "{% call kept_frame('test', (state,)) %}{{ text }}{% endcall %}"
        assert render_template_string(template, state=1, text="one") == "one"
        assert render_template_string(template, state=1, text="two") == "one"  # kept
        assert render_template_string(template, state=2, text="<two>") == "&lt;two&gt;"
