"""Hypothesis drives every form and every query string the app serves with hostile input: never
a 5xx, only the answers a person can act on, no traceback text, no redirect off the site.

Nothing here lists forms by hand, so a new form cannot be missed: each role walks the URL map
(with tests/test_authorization.py's SAMPLE_ARGS for URL arguments, plus seeded objects and the
links its pages show), every page is parsed for its <form>s, and each form is submitted with its
own CSRF token and hostile values. A POST route no page shows a form for is fuzzed on its own.
Counts are printed at the end (tests/fuzz/conftest.py); ``make fuzz`` runs 10,000 examples per form.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from tests.test_authorization import EXPECTED, LOGIN, SAMPLE_ARGS

from .conftest import EXAMPLES, PENDING, ROLES, STATS, World
from .forms import CHARS, QUERY_KEYS, RAW_QUERY_TAILS, Field, Form, field_value, parse_page, submission

pytestmark = pytest.mark.fuzz

# 429 is not here: the test configuration turns rate limits off, so a 429 would be a surprise.
ALLOWED = {200, 302, 303, 400, 403, 404, 405, 409, 410, 413}
SKIP_ENDPOINTS = {"static", "bootstrap.static", "auth.logout"}
PAGES_PER_ENDPOINT = 3
CSRF_REFRESH_SECONDS = 1800  # tokens live an hour (WTF_CSRF_TIME_LIMIT); a deep run outlasts that
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                         suppress_health_check=list(HealthCheck), print_blob=False)


def endpoint_of(world: World, method: str, url: str) -> tuple[str, dict] | None:
    """The endpoint (and its URL arguments) a path reaches, or None when no rule matches."""
    adapter = world.app.url_map.bind("localhost")
    parts = urlsplit(url)
    try:
        return adapter.match(parts.path, method=method)
    except (HTTPException, RequestRedirect):
        return None


def start_pages(world: World, role: str) -> list[str]:
    """Every GET route of the URL map (arguments from SAMPLE_ARGS), then the role's seeded pages."""
    if role in PENDING:
        return world.extra_pages[role]
    urls = []
    with world.app.test_request_context():
        from flask import url_for

        for rule in world.app.url_map.iter_rules():
            if "GET" in (rule.methods or ()) and rule.endpoint not in SKIP_ENDPOINTS:
                urls.append(url_for(rule.endpoint, **SAMPLE_ARGS.get(rule.endpoint, {})))
    return world.extra_pages[role] + sorted(set(urls))


def session_ended(world: World, role: str, response) -> bool:
    """Whether the fuzz signed its own client out. Some pages send a signed-in user to /login on
    purpose (the second-factor step with no sign-in pending), so a redirect there is checked."""
    if role == "anonymous" or response.status_code not in (302, 303):
        return False
    if not urlsplit(response.headers.get("Location", "")).path.startswith("/login"):
        return False
    probe = world.clients[role].get(PENDING.get(role, "/account"))
    probe.close()
    STATS.requests += 1
    return probe.status_code != 200


def fetch(world: World, role: str, url: str):
    """GET a page as ``role`` (signing in again if the fuzz ended the session); returns (status, html)."""
    for _ in range(2):
        response = world.clients[role].get(url)
        STATS.requests += 1
        html = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
        response.close()
        if not session_ended(world, role, response):
            break
        world.sign_in(role)
    if response.status_code >= 500:
        STATS.server_errors.append(f"GET {url} as {role}: {response.status_code} (opening the page)")
    assert response.status_code < 500, f"GET {url} as {role}: {response.status_code}"
    return response.status_code, html


def crawl(world: World, role: str) -> list[tuple[str, str]]:
    """Pages (url, endpoint) the role can open: the URL map first, then links, a few per endpoint."""
    queue = deque(start_pages(world, role))
    seen_urls: set[str] = set()
    per_endpoint: dict[str, int] = {}
    pages = []
    while queue and len(pages) < 300:
        url = queue.popleft()
        match = endpoint_of(world, "GET", url)
        if url in seen_urls or match is None or match[0] in SKIP_ENDPOINTS:
            continue
        seen_urls.add(url)
        endpoint = match[0]
        if per_endpoint.get(endpoint, 0) >= PAGES_PER_ENDPOINT:
            continue
        status, html = fetch(world, role, url)
        if status != 200:
            continue
        per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
        world.visited.setdefault(role, set()).add(endpoint)
        world.seen_args.setdefault(endpoint, match[1])
        pages.append((url, endpoint))
        if html and role not in PENDING:
            for link in parse_page(url, html).links:
                parts = urlsplit(link)
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


@dataclass
class Target:
    """One form (or one page's query string) under fuzz, for one role."""

    world: World
    role: str
    page: str
    method: str
    action: str
    endpoint: str
    form: Form | None
    token: str | None
    token_at: float = 0.0

    def refresh_token(self) -> None:
        """The page's current CSRF token (after a new sign-in, or when the old one gets old)."""
        self.token_at = time.monotonic()
        if self.form is None or self.form.csrf_token is None:
            return
        _, html = fetch(self.world, self.role, self.page)
        for form in parse_page(self.page, html).forms:
            if form.csrf_token:
                self.token = form.csrf_token
                return

    def send(self, pairs: list[tuple[str, object]], tail: str = "") -> None:
        """Submit once and check the answer; a failure is counted and fails the example."""
        if time.monotonic() - self.token_at > CSRF_REFRESH_SECONDS:
            self.refresh_token()
        client = self.world.clients[self.role]
        path, _, query = self.action.partition("?")
        shown = repr(pairs)[:400]
        try:
            if self.method == "GET":
                qs = "&".join(x for x in (query, urlencode([(k, v) for k, v in pairs if isinstance(v, str)]))
                              if x) + tail
                response = client.get(path, query_string=qs)
            else:
                data = MultiDict(pairs)
                if self.token is not None:
                    data.setlist("csrf_token", [self.token])
                response = client.open(self.action, method=self.method, data=data)
            body = response.get_data()
            response.close()
        except Exception as exc:
            STATS.server_errors.append(f"{self.method} {self.action} ({self.endpoint}) as {self.role}: "
                                       f"{type(exc).__name__}: {exc} with {shown}")
            raise
        STATS.requests += 1
        status = response.status_code
        STATS.statuses[status] = STATS.statuses.get(status, 0) + 1
        where = f"{self.method} {self.action} ({self.endpoint}) as {self.role}"
        if status >= 500:
            STATS.server_errors.append(f"{where}: {status} with {shown}{tail!r}")
        assert status < 500, f"{where}: {status} (ref {response.headers.get('X-Request-Id')})"
        assert status in ALLOWED, f"{where}: unexpected {status}"
        assert b"Traceback (most recent call last)" not in body, f"{where}: traceback text in the answer"
        if status in (301, 302, 303, 307, 308):
            location = urlsplit(response.headers.get("Location", ""))
            assert location.netloc in ("", "localhost"), f"{where}: redirect off the site: {location.geturl()}"
            if session_ended(self.world, self.role, response):
                self.world.sign_in(self.role)
                self.refresh_token()
            else:
                # Follow it as a browser would: the page must render, and its flash leaves the session.
                landed = client.get(location.path, query_string=location.query)
                landed.close()
                STATS.requests += 1
                if landed.status_code >= 500:
                    STATS.server_errors.append(f"{where}: redirected to {location.path}, which answered "
                                               f"{landed.status_code}, with {shown}")
                assert landed.status_code < 500, f"{where}: the page it redirected to answered {landed.status_code}"


def run(target: Target, strategy: st.SearchStrategy, failures: list[str]) -> None:
    """Hypothesis over one target; a failing form is noted and the walk goes on to the next."""

    @FUZZ_SETTINGS
    @given(pairs=strategy, tail=st.sampled_from(RAW_QUERY_TAILS) if target.method == "GET" else st.just(""))
    def example(pairs, tail):
        target.send(pairs, tail)

    target.token_at = time.monotonic()
    try:
        example()
    except Exception as exc:  # noqa: BLE001 - collect every form's failure, then fail the test once
        failures.append(f"{target.method} {target.action} ({target.endpoint}) as {target.role}: {exc}")


def query_pairs(keys: list[str], offered: dict[str, list[str]]) -> st.SearchStrategy:
    """A query string: known filter keys with their offered values or hostile ones, repeats, junk keys."""
    key = st.one_of(st.sampled_from(keys), st.text(CHARS, min_size=1, max_size=12))

    def value_for(k: str) -> st.SearchStrategy[str]:
        return field_value(Field(k, "text", offered.get(k, [])))

    pair = key.flatmap(lambda k: st.tuples(st.just(k), value_for(k)))
    return st.lists(pair, max_size=6)


def fuzz_role(world: World, role: str) -> list[str]:
    failures: list[str] = []
    for url, endpoint in crawl(world, role):
        status, html = fetch(world, role, url)
        if status != 200 or not html:
            continue
        forms = parse_page(url, html).forms
        offered: dict[str, list[str]] = {}
        for form in forms:
            match = endpoint_of(world, form.method, form.action)
            if match is None or match[0] in SKIP_ENDPOINTS:
                continue
            if form.method == "GET":
                offered.update({n: f.values for n, f in form.fields.items()})
            key = (role, *form.key(match[0]))
            if key in STATS.forms:
                continue
            STATS.forms.add(key)
            if form.method == "POST":
                world.fuzzed_posts.add(match[0])
                world.post_fields.setdefault(match[0], form.fields)
            target = Target(world, role, url, form.method, form.action, match[0], form, form.csrf_token)
            run(target, submission(form, QUERY_KEYS), failures)
        page_key = (role, endpoint)
        if page_key not in STATS.query_pages:
            STATS.query_pages.add(page_key)
            target = Target(world, role, url, "GET", url, endpoint, None, None)
            run(target, query_pairs(QUERY_KEYS + sorted(offered), offered), failures)
    return failures


@pytest.mark.parametrize("role", ROLES)
def test_every_form_and_query_string_survives_hostile_input(world, role):
    """Each role's pages and forms, fuzzed: no 5xx, no traceback, no redirect off the site."""
    failures = fuzz_role(world, role)
    assert world.visited.get(role), f"{role} could open no page at all"
    assert not failures, "\n".join(failures)


# The matrix's columns (tests/test_authorization.py) each fuzz role stands for: the fuzz's admin
# holds every staff role (as migration 0010 left the admins of before).
COLUMNS = {"admin": ("supervisor", "records_clerk", "privacy_officer", "admin", "multi", "operator"),
           "operator": ("operator",), "requester": ("requester",), "anonymous": ("anonymous",)}


def allowed_role(endpoint: str, method: str) -> str | None:
    """A role the authorization matrix lets through to the view (so the fuzz reaches its checks)."""
    expected = EXPECTED.get((endpoint, method), {})
    for role in ("admin", "operator", "requester", "anonymous"):
        if any(expected.get(column) not in (403, LOGIN, None) for column in COLUMNS[role]):
            return role
    return None


def test_posts_no_page_shows_a_form_for_are_fuzzed_too(world):
    """A POST route the walk found no form for (script-driven, or on a page the walk missed) is
    fuzzed with the fields of its blueprint's forms and junk, on a real object when one was seen."""
    failures: list[str] = []
    orphans = []
    with world.app.test_request_context():
        from flask import url_for

        for rule in world.app.url_map.iter_rules():
            if "POST" not in (rule.methods or ()) or rule.endpoint in SKIP_ENDPOINTS | world.fuzzed_posts:
                continue
            role = allowed_role(rule.endpoint, "POST")
            if role is None:
                continue
            args = next((a for a in world.seen_args.values() if a and set(rule.arguments) <= set(a)),
                        SAMPLE_ARGS.get(rule.endpoint, {}))
            args = {k: v for k, v in args.items() if k in rule.arguments}
            orphans.append((rule.endpoint, role, url_for(rule.endpoint, **args)))
    for endpoint, role, path in orphans:
        fields = {}
        for name, known in world.post_fields.items():
            if name.split(".")[0] == endpoint.split(".")[0]:
                fields.update(known)
        token = next((f.values[0] for f in fields.values() if f.name == "csrf_token" and f.values), None)
        form = Form(action=path, method="POST", multipart=False, fields=dict(fields))
        if token is None:
            form.fields["csrf_token"] = Field("csrf_token", "hidden", [""])
        target = Target(world, role, path, "POST", path, endpoint, form, None)
        target.token = fresh_token(world, role)
        STATS.forms.add((role, "POST", endpoint, "orphan"))
        world.fuzzed_posts.add(endpoint)
        run(target, submission(form, QUERY_KEYS), failures)
    assert not failures, "\n".join(failures)


def fresh_token(world: World, role: str) -> str | None:
    """A CSRF token of the role's current session, from the first page with a form."""
    for url in ("/account", "/login", "/"):
        _, html = fetch(world, role, url)
        for form in parse_page(url, html).forms:
            if form.csrf_token:
                return form.csrf_token
    return None


def test_the_walk_reached_every_page_and_post_route(world):
    """Coverage: every GET page some role may open was opened by that role (so its forms were
    parsed), and every POST route was fuzzed by a form or on its own."""
    missing = []
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        if "GET" in (rule.methods or ()):
            expected = EXPECTED.get((rule.endpoint, "GET"), {})
            for role, columns in COLUMNS.items():
                opens = any(expected.get(column) == 200 for column in columns)
                if opens and rule.endpoint not in world.visited.get(role, set()):
                    missing.append(f"GET {rule.endpoint} as {role}")
        reachable = allowed_role(rule.endpoint, "POST") or rule.endpoint in ("auth.mfa", "auth.mfa_setup")
        if "POST" in (rule.methods or ()) and reachable:
            if rule.endpoint not in world.fuzzed_posts:
                missing.append(f"POST {rule.endpoint}")
    assert not missing, "not fuzzed: " + ", ".join(missing)
    assert STATS.requests > len(STATS.forms) * min(EXAMPLES, 5)
    assert not STATS.server_errors, "\n".join(STATS.server_errors[:20])
