"""Stored letters as PDF files, made with WeasyPrint, fetching nothing.

A letter is stored as a self-contained HTML page (``intake.records.letters``): its own inline
stylesheet, no image, no link, no font from outside. The PDF is made from that stored page, so it
says exactly what the HTML letter says, in the language the letter was sent in.

WeasyPrint is imported lazily, on the first PDF: it needs Debian's ``libpango-1.0-0`` and
``libpangoft2-1.0-0`` (docs/deploy.md). Without them the app starts and HTML letters work; the PDF
link answers a page that says so, and ``flask security-check`` and ``/readyz`` name the problem
(``unavailable_reason``).

No URL is ever fetched while a PDF is made: the fetcher given to WeasyPrint refuses every one
(``http:``, ``file:``, ``data:``...), so a letter cannot reach the network or the file system even
if something in it named a resource. The inline ``<style>`` of the page needs no fetching.
"""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import re
import sys
from functools import lru_cache
from typing import Any

CONTENT_TYPE = "application/pdf"
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9-]+")


class PdfUnavailable(RuntimeError):
    """WeasyPrint (or the system libraries it needs) cannot be loaded here."""


class FetchRefused(ValueError):
    """A letter asked for a resource; letters fetch nothing."""


@lru_cache(maxsize=1)
def _load() -> tuple[Any, str | None]:
    """(the weasyprint module, None), or (None, why it cannot load), tried once per process."""
    try:
        module = importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: libpango missing (cffi's dlopen)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return module, None


def unavailable_reason() -> str | None:
    """Why PDF letters cannot be made on this machine, or None when they can."""
    return _load()[1]


# The system libraries WeasyPrint opens when imported (its text/ffi.py), by the names the loader knows.
_LIBRARIES = ("gobject-2.0", "pango-1.0", "harfbuzz", "fontconfig", "pangoft2-1.0")


@lru_cache(maxsize=1)
def _installed_problem() -> str | None:
    if importlib.util.find_spec("weasyprint") is None:
        return "ImportError: No module named 'weasyprint'"
    missing = [name for name in _LIBRARIES if ctypes.util.find_library(name) is None]
    return f"OSError: cannot find the {', '.join(missing)} libraries" if missing else None


def installed_problem() -> str | None:
    """What ``unavailable_reason`` would say, without loading WeasyPrint into this process unless it
    is already loaded: whether the package and the system libraries it opens are installed. For
    ``/readyz``, which every worker answers: importing WeasyPrint there added 37 MB and half a second
    to each one (``make bench``'s largest worker was the one that had answered it)."""
    if "weasyprint" in sys.modules:  # loaded here already: the exact answer costs nothing more
        return unavailable_reason()
    return _installed_problem()


def available() -> bool:
    return unavailable_reason() is None


@lru_cache(maxsize=1)
def _fetcher_class() -> type:
    base = importlib.import_module("weasyprint.urls").URLFetcher

    class RefuseEveryUrl(base):  # type: ignore[misc,valid-type]
        """WeasyPrint's fetcher with no protocol allowed, no redirect, and a ``fetch`` that
        refuses (and notes) every URL before any handler could open it."""

        def __init__(self) -> None:
            super().__init__(timeout=1, allowed_protocols=(), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            self.refused.append(url)
            raise FetchRefused("letters fetch no resource")

    return RefuseEveryUrl


def refusing_fetcher() -> Any:
    """A new fetcher that refuses every URL (its ``refused`` lists what was asked for)."""
    if not available():
        raise PdfUnavailable(unavailable_reason())
    return _fetcher_class()()


def render_pdf(html: str, fetcher: Any = None) -> bytes:
    """The stored letter ``html`` as PDF bytes (``%PDF-...``), made without fetching anything."""
    module, problem = _load()
    if module is None:
        raise PdfUnavailable(problem)
    fetcher = fetcher if fetcher is not None else refusing_fetcher()
    document = module.HTML(string=html, base_url=None, url_fetcher=fetcher, media_type="print").render()
    return bytes(document.write_pdf())


def pdf_filename(kind: str | None, reference: str) -> str:
    """A file name safe in any header and file system: the reference and the kind of letter,
    letters, digits and hyphens only ("RR-2026-MZ6R-acknowledgment.pdf")."""
    parts = [_UNSAFE_IN_FILENAME.sub("", part or "") for part in (reference, kind or "letter")]
    return "-".join(part for part in parts if part)[:100] + ".pdf"
