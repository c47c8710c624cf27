"""Reading forms and links out of a page (stdlib ``html.parser``) and the Hypothesis strategies
that fill them with hostile values.

A form is described by what the browser would send: its action, method, encoding and, per
field name, the kind of control and the values the page offers (a select's options, a hidden
field's value, a checkbox's value). The fuzz keeps the page's CSRF token and varies the rest.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from hypothesis import strategies as st

# --- Parsing ------------------------------------------------------------------------------------


@dataclass
class Field:
    name: str
    kind: str  # text, textarea, select, checkbox, radio, hidden, file, date, number, submit, ...
    values: list[str] = field(default_factory=list)  # what the page offers (options, value=...)
    multiple: bool = False


@dataclass
class Form:
    action: str  # a path with its query string, resolved against the page
    method: str  # "GET" or "POST"
    multipart: bool
    fields: dict[str, Field] = field(default_factory=dict)

    @property
    def csrf_token(self) -> str | None:
        token = self.fields.get("csrf_token")
        return token.values[0] if token and token.values else None

    @property
    def path(self) -> str:
        return urlsplit(self.action).path

    def key(self, endpoint: str) -> tuple:
        """Forms alike in what they send are fuzzed once (the layout's forms appear on every page)."""
        return (self.method, endpoint, tuple(sorted((n, f.kind) for n, f in self.fields.items())))


class PageParser(HTMLParser):
    """Every <form> (with its controls) and every same-site <a href> of one page."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None

    def _add(self, name: str | None, kind: str, value: str | None = None, multiple: bool = False) -> Field | None:
        if self._form is None or not name:
            return None
        entry = self._form.fields.setdefault(name, Field(name, kind, multiple=multiple))
        if value is not None and value not in entry.values:
            entry.values.append(value)
        return entry

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "a" and a.get("href"):
            target = urljoin(self.page_url, a["href"])
            if urlsplit(target).netloc in ("", "localhost"):
                self.links.append(target)
        elif tag == "form":
            action = urljoin(self.page_url, a.get("action") or self.page_url)
            parts = urlsplit(action)
            self._form = Form(action=parts.path + (f"?{parts.query}" if parts.query else ""),
                              method=(a.get("method") or "get").upper(),
                              multipart="multipart" in a.get("enctype", ""))
            self.forms.append(self._form)
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio", "hidden", "submit") or "value" in a:
                self._add(a.get("name"), kind, a.get("value", "on" if kind == "checkbox" else ""))
            else:
                self._add(a.get("name"), kind)
        elif tag == "button" and a.get("name"):
            self._add(a.get("name"), "submit", a.get("value", ""))
        elif tag == "select":
            self._select = self._add(a.get("name"), "select", multiple="multiple" in a)
        elif tag == "option" and self._select is not None:
            value = a.get("value")
            if value is not None and value not in self._select.values:
                self._select.values.append(value)
        elif tag == "textarea":
            self._textarea = self._add(a.get("name"), "textarea")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and data.strip() and not self._textarea.values:
            self._textarea.values.append(data)


def parse_page(page_url: str, html: str) -> PageParser:
    parser = PageParser(page_url)
    parser.feed(html)
    parser.close()
    return parser


# --- Hostile values -----------------------------------------------------------------------------

SNIPPETS = [
    "", " ", "\t", "\x00", "a\x00b", "\x00" * 20, "\x1b[31m", "\x7f", "\x08\x0c\x0b",
    "\r\n", "x\r\nSet-Cookie: hacked=1", "x\r\nLocation: https://evil.example/",
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)", "<!--", "]]>",
    "' OR '1'='1", "'; DROP TABLE calls; --", "1; SELECT pg_sleep(5)", "\" OR \"\"=\"", "%", "_", "\\", "%%",
    "%00", "%zz", "%ff%fe", "../../../../etc/passwd", "..\\..\\windows\\win.ini", "{{7*7}}", "${7*7}", "{% debug %}",
    "\u202eevil\u202c", "\u200b", "\ufeff", "e\u0301\u0301\u0301\u0301", "Z\u0351\u0360\u0361\u0362" * 30,
    "😀🏳️‍🌈👨‍👩‍👧", "ｆｕｌｌ", "İıß", "\U0010fffd", "مرحبا", "中文字段",
    "-1", "0", "-0", "1", "00001", "2147483647", "2147483648", "-2147483649", "9223372036854775808",
    "9" * 40, "1e309", "-1e309", "NaN", "inf", "-inf", "0x10", "1.5", "1,5", "½",
    "0000-00-00", "9999-12-31", "0001-01-01", "2026-02-30", "2026-13-01", "2026-00-10", "1900-01-01",
    "10000-01-01", "2026-1-1", "01/02/2026", "2026-02-28T25:61:61", "24:00", "99:99", "-1:00", "1970-01-01",
    "true", "false", "null", "None", "undefined", "[]", "{}", "[object Object]", "@", "a@b", "x@example.org",
    "@@@@", "https://evil.example/", "//evil.example", "/\\evil.example", "http:/evil.example",
    "AAAAAAAAAAAAAAAAAAAAAA", "0" * 32, "__proto__",
]

# Keys list pages read (or might): the fuzz sends them even to pages whose form does not show them.
QUERY_KEYS = ["after", "before", "page", "cursor", "show", "tab", "q", "sort", "order", "next", "archive",
              "include_retired", "email", "from", "to", "date_from", "date_to", "status", "kind", "role",
              "period", "start", "end", "limit", "action", "actor", "lang", "format", "id"]

BLANKS = [" ", "  ", "\t", "\r\n", "\n", " \r\n\t ", "\u00a0", "\u3000"]
CHARS = st.characters(exclude_categories=("Cs",))
_controls = st.characters(min_codepoint=0, max_codepoint=0x1F)


def _long(n_min: int, n_max: int) -> st.SearchStrategy[str]:
    return st.builds(lambda piece, n: (piece * n)[:n], st.sampled_from(["A", "é", "😀", "<", "'", "\x00", "9"]),
                     st.integers(n_min, n_max))


def _cursor() -> st.SearchStrategy[str]:
    """Tokens shaped like the app's keyset cursors, with out-of-range numbers inside."""
    body = st.builds(lambda k, i: f"{k}.{i}", st.integers(-10**18, 10**18), st.integers(-5, 2**40))
    return body.map(lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="))


def _dates() -> st.SearchStrategy[str]:
    return st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)


hostile_text = st.one_of(
    st.sampled_from(SNIPPETS),
    st.text(CHARS, max_size=60),
    st.text(st.one_of(_controls, CHARS), max_size=30),
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    _dates(),
    _cursor(),
    _long(200, 5000),
    st.builds(lambda a, b: a + b, st.sampled_from(SNIPPETS), st.text(CHARS, max_size=20)),
)
# Rarely, a body larger than the app takes (MAX_FORM_MEMORY_SIZE / MAX_CONTENT_LENGTH): a 413, not a 500.
huge_text = _long(70_000, 1_100_000)


def field_value(f: Field) -> st.SearchStrategy[str]:
    """What a person or a script might put in this control: what the page offers, or anything."""
    offered = [v for v in f.values if v is not None]
    # Blanks get their own share: Optional() reads them as empty, the view may not.
    choices = [hostile_text, hostile_text, st.sampled_from(BLANKS)]
    if offered:
        choices += [st.sampled_from(offered)] * 3
    return st.one_of(*choices)


def file_value() -> st.SearchStrategy[tuple[io.BytesIO, str]]:
    """An upload: a real-looking header or garbage, under a hostile name."""
    heads = st.sampled_from([b"%PDF-1.4\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"MZ", b"",
                             b"<script>", b"PK\x03\x04"])
    body = st.builds(lambda head, tail: head + tail, heads, st.binary(max_size=2000))
    name = st.one_of(st.sampled_from(["a.pdf", "../../etc/passwd", "x.pdf\x00.exe", "", "ü😀.png", "a" * 500,
                                      "con.pdf", "<b>.jpg", "x\r\ny.pdf"]), st.text(CHARS, max_size=40))
    return st.builds(lambda data, filename: (io.BytesIO(data), filename), body, name)


@st.composite
def submission(draw, form: Form, extra_keys: list[str]) -> list[tuple[str, object]]:
    """The fields to send, as (name, value) pairs (a name may repeat). The CSRF token is the page's."""
    pairs: list[tuple[str, object]] = []
    token = form.csrf_token
    if token is not None:
        pairs.append(("csrf_token", token))
    dates = [n for n, f in form.fields.items() if f.kind == "date" or n.endswith(("_on", "_from", "_to", "date"))]
    reversed_range = len(dates) >= 2 and draw(st.integers(0, 9)) == 0
    for name, f in form.fields.items():
        if name == "csrf_token":
            continue
        how = draw(st.integers(0, 19))
        if how == 0:
            continue  # missing altogether
        if f.kind == "file" and form.multipart:
            pairs.append((name, draw(file_value())))
            continue
        count = 2 if how == 1 or (f.multiple and how < 6) else 1  # repeated keys
        for _ in range(count):
            pairs.append((name, draw(field_value(f))))
    if reversed_range:
        later = draw(st.dates(min_value=date(1901, 1, 1), max_value=date(2999, 1, 1)))
        earlier = later - timedelta(days=draw(st.integers(1, 4000)))
        pairs = [p for p in pairs if p[0] not in dates[:2]]
        pairs += [(dates[0], later.isoformat()), (dates[1], earlier.isoformat())]
    for key in draw(st.lists(st.sampled_from(extra_keys) | st.text(CHARS, min_size=1, max_size=20), max_size=2)):
        pairs.append((key, draw(hostile_text)))
    if draw(st.integers(0, 199)) == 0:
        name = draw(st.sampled_from(sorted(form.fields) or ["x"]))
        pairs.append((name, draw(huge_text)))
    return pairs


RAW_QUERY_TAILS = ["", "", "", "&%ff=%fe", "&a=%zz%", "&=&&=", "&x[]=1&x[]=2", "&after=%00", "&\u00ff=1",
                   "&" + "k=v&" * 300]
