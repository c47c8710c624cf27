"""The compiled translation catalogues the app serves, checked before it starts.

Flask-Babel reads ``messages.mo``, compiled from the ``messages.po`` people edit. The ``.mo`` files
are not in git, and without one Spanish readers silently get English (and letters are stored in
English for good). So a catalogue that is missing, or older than its ``.po``, stops the app from
starting (``create_app``), fails ``/readyz`` and is named by ``flask security-check``; every way of
deploying compiles them (``make run``/``make serve``, the Dockerfile, docs/deploy.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

COMPILE_HINT = "compile it: .venv/bin/pybabel compile -d intake/translations (make does this)"


def translation_directories(config: Any, root_path: str) -> list[Path]:
    """Flask-Babel's catalogue folders (``BABEL_TRANSLATION_DIRECTORIES``, relative to the package)."""
    raw = str(config.get("BABEL_TRANSLATION_DIRECTORIES") or "translations")
    return [Path(root_path, part) for part in raw.split(";") if part.strip()]


def served_languages(config: Any) -> list[str]:
    """The languages with a catalogue: all of ``LANGUAGES`` except the source language of the strings."""
    default = str(config.get("BABEL_DEFAULT_LOCALE") or "en")
    return [lang for lang in config.get("LANGUAGES", ()) if lang != default]


def catalogue_problems(config: Any, root_path: str) -> list[str]:
    """One sentence per catalogue that is missing or older than its ``.po``; empty when all are compiled."""
    problems = []
    directories = translation_directories(config, root_path)
    for lang in served_languages(config):
        found = [d / lang / "LC_MESSAGES" for d in directories if (d / lang / "LC_MESSAGES").is_dir()]
        if not found:
            problems.append(f"no translation catalogue for '{lang}' in {', '.join(map(str, directories))}")
            continue
        folder = found[0]
        po, mo = folder / "messages.po", folder / "messages.mo"
        if not mo.is_file():
            problems.append(f"the '{lang}' translation catalogue {mo} is missing; {COMPILE_HINT}")
        elif po.is_file() and os.stat(po).st_mtime > os.stat(mo).st_mtime:
            problems.append(f"the '{lang}' translation catalogue {mo} is older than its {po.name}; {COMPILE_HINT}")
    return problems


def compile_catalogues(directory: Path) -> list[Path]:
    """Compile every ``messages.po`` under ``directory`` whose ``.mo`` is missing or older (as make does).

    Each ``.mo`` is written beside a temporary name and renamed into place, so a process reading it
    meanwhile sees the old file or the new one, never half of one. Returns the files written.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and os.stat(mo).st_mtime >= os.stat(po).st_mtime:
            continue
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parts[-3])
        partial = mo.with_name(f".{mo.name}.{os.getpid()}")
        with partial.open("wb") as handle:
            write_mo(handle, catalog)
        os.replace(partial, mo)
        written.append(mo)
    return written
