"""The text of a site notice: the admin's input format, its cleaning by nh3, and the way back.

Input format: plain text, where a blank line starts a new paragraph and a single line break
stays a line break. Within it the admin may use ``<strong>`` (or ``<b>``), ``<em>`` (or ``<i>``),
``<a href="…">`` with an ``https:``, ``mailto:`` or ``tel:`` address, ``<ul>``/``<ol>``/``<li>``,
``<p>`` and ``<br>``. ``clean_body`` turns that into HTML and hands it to nh3, which keeps exactly
those tags (links get ``rel="noopener noreferrer"``), drops every other tag and attribute, and
removes script, style, iframe and similar elements with their content. Only nh3's output is
stored, and ``notice_html`` cleans it again when a page shows it, so a row written some other way
cannot carry script onto a public page.

``formatting_removed`` tells whether the cleaning will drop some of what was typed (so the admin
can be told), and ``body_source`` turns stored HTML back into the input format for editing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

import nh3
from markupsafe import Markup

TAGS = frozenset({"p", "br", "strong", "em", "a", "ul", "ol", "li"})
_ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = frozenset({"https", "mailto", "tel"})
# Elements removed with everything inside them: their content is code, or text nobody meant to show.
_DROP_WITH_CONTENT = {"script", "style", "iframe", "noscript", "template", "textarea", "title", "object",
                      "embed", "noembed", "noframes", "xmp", "select"}
_BLOCKS = {"p", "li", "ul", "ol"}
_SYNONYMS = {"b": "strong", "i": "em"}
_SYNONYM_RE = re.compile(r"<(/?)(b|i)(?=[\s/>])", re.IGNORECASE)
_COMMENT_RE = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_BLOCK_TAG_RE = re.compile(r"<(/?)(p|ul|ol|li)(?=[\s/>])[^>]*>", re.IGNORECASE)
_ENDS_WITH_BREAK_RE = re.compile(r"<br\s*/?>$", re.IGNORECASE)
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n\s*")
_TAG_RE = re.compile(r"<[^>]*>")
LINK_REL = "noopener noreferrer"
_REL_ATTRIBUTE = f' rel="{LINK_REL}"'
# nh3 keeps a link whose address it refused, without the address: plain text says the same.
_DEAD_LINK_RE = re.compile(f"<a{_REL_ATTRIBUTE}>(.*?)</a>", re.DOTALL)
# What is left of a paragraph that held only script, or of bold opened before a list (the parser
# reopens it in every following block): elements with nothing to show.
_EMPTY_ELEMENT_RE = re.compile(r"<(p|li|ul|ol|strong|em|a)(?:\s[^>]*)?>(\s*)</\1>")


def _paragraphs(text: str) -> list[str]:
    """Loose text: a blank line ends a paragraph, a single line break becomes ``<br>`` (unless the
    line already ends with one)."""
    out = []
    for chunk in _PARAGRAPH_BREAK_RE.split(text):
        lines = [line.strip() for line in chunk.strip().split("\n")]
        if not lines[0]:
            continue
        html = lines[0]
        for line in lines[1:]:
            html += ("\n" if _ENDS_WITH_BREAK_RE.search(html) else "<br>\n") + line
        out.append(f"<p>{html}</p>")
    return out


def _blocks(text: str) -> list[str]:
    """Split the admin's text into the ``<p>``/``<ul>``/``<ol>`` blocks they typed (kept as typed,
    nesting followed; a list item typed without its list counts as one) and the loose text between
    them (made into paragraphs)."""
    blocks: list[str] = []
    depth, start, loose_from = 0, 0, 0
    for match in _BLOCK_TAG_RE.finditer(text):
        closing = match.group(1) == "/"
        if not closing:
            if depth == 0:
                blocks.extend(_paragraphs(text[loose_from:match.start()]))
                start = match.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(text[start:match.end()])
                loose_from = match.end()
        else:
            # A stray closing tag outside any block: dropped (a parser would make an empty paragraph).
            blocks.extend(_paragraphs(text[loose_from:match.start()]))
            loose_from = match.end()
    if depth > 0:
        blocks.append(text[start:])  # an unclosed block runs to the end; nh3 closes it
    else:
        blocks.extend(_paragraphs(text[loose_from:]))
    return blocks


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return _SYNONYM_RE.sub(lambda m: f"<{m.group(1)}{_SYNONYMS[m.group(2).lower()]}", text)


def _clean_once(text: str) -> str:
    html = "\n".join(_blocks(_COMMENT_RE.sub("", _normalise(text))))
    cleaned = nh3.clean(html, tags=set(TAGS), clean_content_tags=_DROP_WITH_CONTENT, attributes=_ATTRIBUTES,
                        url_schemes=set(URL_SCHEMES), link_rel=LINK_REL, url_relative="deny",
                        strip_comments=True)
    html = _DEAD_LINK_RE.sub(r"\1", cleaned)
    for _ in range(8):  # nested empties: one level per round
        html, found = _EMPTY_ELEMENT_RE.subn(lambda m: "" if m.group(1) in _BLOCKS else m.group(2), html)
        if not found:
            break
    return html.strip()


def clean_body(text: str | None) -> str:
    """The admin's text (format in the module docstring) as safe HTML: nh3 keeps only ``TAGS``,
    ``href`` on links with a scheme in ``URL_SCHEMES``, and drops script and style with their
    content. Idempotent: cleaning its own output changes nothing, so it also guards at display."""
    if not text:
        return ""
    html = _clean_once(text)
    # The parser's repairs (a list typed inside a paragraph, bold left open across blocks) can move
    # block boundaries, which the next pass then formats differently; a pass or two settles it.
    for _ in range(4):
        again = _clean_once(html)
        if again == html:
            return html
        html = again
    # Markup tangled enough never to settle keeps its text and paragraphs only.
    return _clean_once(nh3.clean(html, tags={"p", "br"}))


def has_text(html: str) -> bool:
    """Whether cleaned HTML shows any text at all (a body of only removed tags shows none)."""
    return bool(_TAG_RE.sub("", html).replace("&nbsp;", "").strip())


class _Inventory(HTMLParser):
    """Notes whether the text uses anything ``clean_body`` will remove."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.removed = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = _SYNONYMS.get(tag, tag)
        if tag not in TAGS:
            self.removed = True
        for name, value in attrs:
            if tag != "a" or name != "href" or not _allowed_link(value or ""):
                self.removed = True

    def handle_endtag(self, tag: str) -> None:
        if _SYNONYMS.get(tag, tag) not in TAGS:
            self.removed = True

    def handle_comment(self, data: str) -> None:
        self.removed = True

    def handle_decl(self, decl: str) -> None:
        self.removed = True

    def handle_pi(self, data: str) -> None:
        self.removed = True

    def unknown_decl(self, data: str) -> None:
        self.removed = True


def _allowed_link(href: str) -> bool:
    scheme, colon, _rest = href.strip().partition(":")
    return bool(colon) and scheme.lower() in URL_SCHEMES


def formatting_removed(text: str | None) -> bool:
    """Whether ``clean_body`` removes some of the markup in ``text`` (a tag or attribute outside the
    allowed set, a link that is not https/mailto/tel, a comment), so the admin can be told."""
    if not text:
        return False
    inventory = _Inventory()
    inventory.feed(text)
    inventory.close()
    return inventory.removed


def body_source(html: str | None) -> str:
    """Stored HTML back in the input format, for the edit form, such that ``clean_body`` of the
    result is the stored HTML again: paragraphs and line breaks as blank lines and line breaks,
    ``&lt;`` escaped only where a bare ``<`` would start a tag. Where that plain form would not
    come back the same (lists or line breaks inside lists, say), the HTML itself, which does."""
    if not html:
        return ""
    html = html.replace(_REL_ATTRIBUTE, "")
    text = re.sub(r"<br\s*/?>\n?", "\n", html)
    text = re.sub(r"</p>\s*", "\n\n", re.sub(r"<p>", "", text))
    text = re.sub(r"&amp;(?![A-Za-z0-9#]+;)", "&", text.replace("&gt;", ">"))
    text = re.sub(r"&lt;(?![A-Za-z/!?])", "<", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    stored = clean_body(html)
    return text if clean_body(text) == stored else html


@lru_cache(maxsize=256)
def _clean_for_display(stored: str) -> str:
    # A pure function of the text: the public pages ask for the same few bodies on every request.
    return clean_body(stored)


def notice_html(stored: str | None) -> Markup:
    """A stored body, ready for a page: cleaned again now, whatever is in the column."""
    # Markup only around nh3's output: the allowed tags, links with checked schemes, nothing else.
    return Markup(_clean_for_display(stored or ""))  # nosec B704
