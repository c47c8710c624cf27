"""Label tables (coded value -> translated text) resolved once per locale.

The tables are dictionaries of lazy strings built at import time, before any locale is known.
A lazy string finds its translation through Flask-Babel's request context each time it is
printed, which costs tens of microseconds; a list page prints hundreds of labels (a call-list
page about 250). ``in_locale`` turns a table into plain strings for the current locale, once
per process and locale, so a page pays one dictionary lookup per label instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import get_locale
from flask_babel.speaklater import LazyString

# (id of the table, locale) -> (the table, kept alive so its id cannot be reused; its resolution)
_RESOLVED: dict[tuple[int, str], tuple[Any, Any]] = {}


class CodeLabels(dict[Any, Any]):
    """A resolved table of labels: a code it does not know is its own label, so a template reads
    ``labels.risk[code]`` (an item lookup, no call: intake/listing.py) as ``labels.risk.get(code, code)``."""

    def __missing__(self, key: Any) -> Any:
        return key


def _resolve(value: Any) -> Any:
    if isinstance(value, Mapping):
        resolved = {key: _resolve(item) for key, item in value.items()}
        if any(isinstance(item, Mapping) for item in value.values()):
            return resolved  # a table of tables: an unknown name is an error, not a label
        return CodeLabels(resolved)
    if isinstance(value, LazyString):
        return str(value)
    return value


def in_locale(table: Mapping[Any, Any]) -> Any:
    """``table`` (nested dictionaries whose leaves may be lazy strings; a module-level constant)
    with every lazy string translated into the current locale."""
    key = (id(table), str(get_locale() or ""))
    cached = _RESOLVED.get(key)
    if cached is None:
        cached = _RESOLVED[key] = (table, _resolve(table))
    return cached[1]
