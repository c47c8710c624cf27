"""Translations found once per request, not once per string.

Flask-Babel resolves every ``gettext`` from scratch: the request's Babel context (three lookups
through ``flask.g``), the domain, the locale (the same again), the locale's name as a string, then
its cache of catalogues. A list page translates a few hundred strings (its template's ``_()``, the
labels of its filters' options), and that path was about a seventh of the page's time (``make
profile``, docs/benchmarks.md). Here the catalogue found for a request is kept on the request's
Babel context with the locale it was found for, and used again while that locale stays the one
in force: ``force_locale`` (e-mails and letters composed in their recipient's language) and
``refresh`` change or drop the locale object, so the next lookup finds the catalogue again.

The templates' ``_``, ``gettext`` and ``ngettext`` (and the ``p`` variants) are Jinja's
"newstyle" gettext, with the same behaviour: the result is markup when autoescaping is on and is
always %-formatted with the keyword arguments (escaped), called through one Jinja context call
instead of three.

Dates (``|dateformat``, Flask-Babel's filter) are formatted by Babel for each row of a queue; a
plain date's text depends only on the language and the format, so it is kept per process (a
bounded table: dates of the last few years, in two languages and a few formats).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from babel import support
from flask import Flask, g
from flask_babel import Domain, format_date, get_babel, get_translations
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

_ATTR = "intake_translations"
_DATE_CACHE_MAX = 20_000
_dates: dict[tuple[str, date, Any], str] = {}


class RequestDomain(Domain):
    """Flask-Babel's domain, keeping the catalogue it found on the request's Babel context."""

    def get_translations(self) -> support.NullTranslations:
        try:
            ctx = g._flask_babel
        except (AttributeError, RuntimeError):  # no Babel context yet, or no app context at all
            return super().get_translations()
        locale = getattr(ctx, "babel_locale", None)
        kept = getattr(ctx, _ATTR, None)
        if kept is not None and locale is not None and kept[0] is locale and kept[1] is self:
            return kept[2]
        found = super().get_translations()  # finds the locale (and sets ctx.babel_locale) on first use
        setattr(ctx, _ATTR, (getattr(ctx, "babel_locale", None), self, found))
        return found


def current_translations() -> support.NullTranslations:
    """The catalogue of the locale in force (what ``flask_babel.get_translations`` returns)."""
    try:
        ctx = g._flask_babel
    except (AttributeError, RuntimeError):
        return get_translations()
    kept = getattr(ctx, _ATTR, None)
    if kept is not None and kept[0] is getattr(ctx, "babel_locale", None) \
            and kept[1] is getattr(ctx, "babel_domain", None):
        return kept[2]
    return get_translations()


# --- The templates' gettext (Jinja's newstyle semantics) ------------------------------------------

def _finish(eval_ctx: EvalContext, text: str, variables: dict[str, Any]) -> str:
    # As Jinja's newstyle gettext: the catalogue's text is the template's own (trusted, like the template),
    # and the variables are escaped by Markup's % below.
    rv: str = Markup(text) if eval_ctx.autoescape else text  # nosec B704
    # As Jinja's newstyle gettext: always a format string, even without variables (so "%%" is "%").
    return rv % variables


@pass_eval_context
def template_gettext(eval_ctx: EvalContext, string: str, **variables: Any) -> str:
    return _finish(eval_ctx, current_translations().ugettext(string), variables)


@pass_eval_context
def template_ngettext(eval_ctx: EvalContext, singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    return _finish(eval_ctx, current_translations().ungettext(singular, plural, num), variables)


@pass_eval_context
def template_pgettext(eval_ctx: EvalContext, context: str, string: str, **variables: Any) -> str:
    variables.setdefault("context", context)
    return _finish(eval_ctx, current_translations().upgettext(context, string), variables)


@pass_eval_context
def template_npgettext(eval_ctx: EvalContext, context: str, singular: str, plural: str, num: int,
                       **variables: Any) -> str:
    variables.setdefault("context", context)
    variables.setdefault("num", num)
    return _finish(eval_ctx, current_translations().unpgettext(context, singular, plural, num), variables)


# --- Dates -----------------------------------------------------------------------------------------

def date_format(value: date | datetime | None = None, format: Any = None, rebase: bool = True) -> str:
    """Flask-Babel's ``format_date`` (the ``|dateformat`` filter); a plain date's text kept per
    language and format. A datetime goes to Flask-Babel (it is moved to the reader's zone first)."""
    if type(value) is not date:
        return str(format_date(value, format, rebase))
    try:
        ctx = g._flask_babel
        locale = ctx.babel_locale
    except (AttributeError, RuntimeError):
        return str(format_date(value, format, rebase))
    key = (str(locale), value, format)
    text = _dates.get(key)
    if text is None:
        if len(_dates) >= _DATE_CACHE_MAX:
            _dates.clear()
        text = _dates[key] = str(format_date(value, format, rebase))
    return text


def init_app(app: Flask) -> None:
    """After ``babel.init_app``: the domain that keeps its catalogue, and the templates' gettext."""
    instance = get_babel(app).instance
    if not isinstance(instance.__dict__.get("domain_instance"), RequestDomain):
        # Flask-Babel's default domain is a cached property of the (shared) Babel object: replaced once.
        instance.__dict__["domain_instance"] = RequestDomain(domain=app.config.get("BABEL_DOMAIN", "messages"))
    app.jinja_env.globals.update(_=template_gettext, gettext=template_gettext, ngettext=template_ngettext,
                                 pgettext=template_pgettext, npgettext=template_npgettext)
    app.jinja_env.filters["dateformat"] = date_format
