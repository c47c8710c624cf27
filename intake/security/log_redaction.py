"""One logging filter for every handler: no secret and no forged line in any log.

``RedactingFilter`` rewrites each record before a handler formats it:

- the token of an e-mailed link (``/invite/…``, ``/reset/…``, ``/register/verify/…``, a recipient's
  ``/copy/…`` and any other
  route with a ``<token>`` argument, found by walking the URL map) becomes ``[token]``;
- the values of sensitive query parameters (``email``, ``token``, ``code``, ``next`` …) become
  ``[redacted]``, and anything shaped like an e-mail address becomes ``[email]``;
- control characters (CR, LF, ESC …, Unicode line separators and bidirectional overrides) are
  escaped (``\\r``, ``\\n``, ``\\x1b``), in the message *and* its arguments, so a request path
  cannot start a line of its own; a traceback keeps its line breaks but every line after the
  first is indented, so none of them can pass for a record of its own.

``install(app)`` puts one filter on every handler of the app's logger, the root logger, gunicorn's
error and access loggers and werkzeug's (the development server's request lines). gunicorn's master
loads this file on its own (gunicorn.conf.py) before any app exists, so it imports nothing from
``intake``: the standard library only.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# Routes whose last argument is the token of an e-mailed link; the URL map adds any other
# route with an argument called ``token`` (or ending in ``_token``).
TOKEN_PREFIXES = ("/invite/", "/reset/", "/register/verify/", "/copy/")
# Query parameters whose value is never logged: addresses looked up, tokens, codes, and ``next``,
# which can carry a whole path with its token.
SENSITIVE_PARAMS = ("email", "token", "code", "next", "password", "secret", "phone", "q", "key", "otp")
TOKEN_MARK, VALUE_MARK, EMAIL_MARK = "[token]", "[redacted]", "[email]"

_SEGMENT = r"[^/?#&\s\"'<>\\]+"
_SLASH = r"(?:/|%2[fF])"
_QUERY = re.compile(r"(?P<key>(?:[?&;]|%3[fF]|%26)(?:" + "|".join(SENSITIVE_PARAMS) + r")(?:=|%3[dD]))"
                    r"(?P<value>[^&;#\s\"'<>\\]*)", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%+^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Colour codes (SGR) the development server adds to its request lines: dropped, not escaped.
_SGR = re.compile(r"\x1b\[[0-9;]*m")
# Bidirectional overrides and isolates, and invisible marks: they reorder or hide what a reader sees.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _static(part: str) -> str:
    return _SLASH.join(re.escape(piece) for piece in part.split("/"))


def token_pattern(prefix: str) -> re.Pattern[str]:
    """``/reset/`` → a pattern matching ``/reset/<token>`` (also with an encoded slash)."""
    return re.compile("(?P<keep>" + _static(prefix) + ")" + _SEGMENT)


def rule_pattern(rule: str, secret_args: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern for a URL rule (``/a/<x>/b/<token>``) whose secret arguments get replaced; None
    when the rule has none. The other arguments match any one path segment."""
    secret = set(secret_args)
    parts = re.split(r"<(?:[^:<>]+:)?([^<>]+)>", rule)
    # parts: static, name, static, name, …, static
    names = parts[1::2]
    last_secret = max((i for i, name in enumerate(names) if name in secret), default=None)
    if last_secret is None:
        return None
    pattern = _static(parts[0])
    for i in range(last_secret + 1):
        name = names[i]
        pattern += f"(?P<secret{i}>{_SEGMENT})" if name in secret else _SEGMENT
        if i < last_secret:
            pattern += _static(parts[2 * i + 2])
    return re.compile(pattern)


def _escape(text: str, keep_newlines: bool = False) -> str:
    if text.isprintable():  # no control, format or separator character other than the space: nothing to do
        return text
    out = []
    for ch in _SGR.sub("", text):
        if keep_newlines and ch == "\n":
            out.append("\n    ")  # a traceback's next line, indented
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


class RedactingFilter(logging.Filter):
    """Rewrite each record's message (with its arguments) and traceback before it is formatted.

    The record's ``msg`` becomes the finished, redacted text and ``args`` is emptied, so every
    formatter (the plain one here, a JSON one elsewhere) sees only redacted text; formatters must
    use ``record.exc_text`` for the traceback, as ``logging.Formatter`` does. A record is rewritten
    once (it is marked), however many filtered handlers it goes through.
    """

    intake_redacting = True  # how install() recognises a filter of this kind, from any copy of this module

    def __init__(self, rules: Iterable[re.Pattern[str]] = ()) -> None:
        super().__init__()
        self.patterns = [token_pattern(prefix) for prefix in TOKEN_PREFIXES] + list(rules)

    def redact(self, text: str, keep_newlines: bool = False) -> str:
        """``text`` with tokens, sensitive values and e-mail addresses replaced, controls escaped."""
        for pattern in self.patterns:
            text = pattern.sub(self._replace_secret, text)
        text = _QUERY.sub(lambda m: m.group("key") + VALUE_MARK, text)
        text = _EMAIL.sub(EMAIL_MARK, text)
        return _escape(text, keep_newlines)

    @staticmethod
    def _replace_secret(match: re.Match[str]) -> str:
        groups = match.groupdict()
        if "keep" in groups:
            return groups["keep"] + TOKEN_MARK
        text, start = match.group(0), match.start()
        # Replace each secret group, right to left, inside the matched text.
        for name in sorted((n for n in groups if n.startswith("secret")), key=lambda n: -match.start(n)):
            lo, hi = match.start(name) - start, match.end(name) - start
            text = text[:lo] + TOKEN_MARK + text[hi:]
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "intake_redacted", False):  # done by the first handler's filter already
            return True
        record.intake_redacted = True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text, keep_newlines=True)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info, keep_newlines=True)
        return True


def secret_arguments(arguments: Iterable[str]) -> set[str]:
    return {name for name in arguments if name == "token" or name.endswith("_token")}


def rules_from_url_map(url_map: Any) -> list[re.Pattern[str]]:
    """A pattern for every route with a token argument (beyond ``TOKEN_PREFIXES``)."""
    patterns = []
    for rule in url_map.iter_rules():
        secret = secret_arguments(rule.arguments)
        if secret:
            pattern = rule_pattern(rule.rule, secret)
            if pattern is not None:
                patterns.append(pattern)
    return patterns


def attach(handler: logging.Handler, log_filter: logging.Filter) -> None:
    """Put ``log_filter`` on ``handler`` in place of any redacting filter it had already."""
    for old in [f for f in handler.filters if getattr(f, "intake_redacting", False)]:
        handler.removeFilter(old)
    handler.addFilter(log_filter)


LOGGER_NAMES = ("", "gunicorn.error", "gunicorn.access", "werkzeug", "flask_limiter", "sqlalchemy", "alembic")


def install(app: Any) -> RedactingFilter:
    """Put one ``RedactingFilter`` (with the app's token routes) on every handler of the app's
    logger, the root logger, gunicorn's error and access loggers and werkzeug's; returns it.

    Call it after the blueprints are registered. In development (``flask run``, ``make run``) the
    development server's request lines go through the root logger's handler (``create_app`` makes
    one), so werkzeug never adds an unfiltered handler of its own.
    """
    log_filter = RedactingFilter(rules_from_url_map(app.url_map))
    loggers = [app.logger, *(logging.getLogger(name) for name in LOGGER_NAMES)]
    for logger in loggers:
        for handler in logger.handlers:
            attach(handler, log_filter)
    app.extensions["intake_log_filter"] = log_filter
    return log_filter
