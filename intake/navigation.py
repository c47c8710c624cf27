"""The main menu: the links a person's roles open, grouped by the work they belong to.

One person may hold several roles (intake/permissions.py); an administrator who also works the
helpline and the records queue would otherwise face a dozen links that wrap onto two lines at a
laptop's width. So the links come in groups (the helpline, the records office, administration), and
a menu with more than ``FLAT_MAX`` links shows each group of several as one drop-down. A count on a
link (urgent calls waiting, requests due today or overdue) is repeated on its group's button.

A menu is built once per (language, roles, counts) in each app and kept: its dozen ``url_for`` and
translations were a tenth of the frame's time (``make profile``). Built, it is immutable (tuples), so
the frame (``intake/frame.py``) can use it as part of its state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from intake.permissions import Permission, can

FLAT_MAX = 6  # links that fit on one line at 1280 px beside the name, the language switch and sign-out
MENUS_MAX = 256  # kept menus per app (languages × role sets × counts); cleared when full


@dataclass(frozen=True)
class MenuLink:
    label: str
    url: str
    id: str  # the element id, for tests and skip links
    count: int = 0  # shown as a badge when above zero
    count_text: str = ""  # what the count means, for screen readers
    urgent: bool = False  # a red badge (people waiting), else amber (deadlines)


@dataclass(frozen=True)
class MenuGroup:
    label: str
    id: str
    links: tuple[MenuLink, ...] = ()

    @property
    def count(self) -> int:
        return sum(link.count for link in self.links)

    @property
    def urgent(self) -> bool:
        return any(link.urgent and link.count for link in self.links)


@dataclass(frozen=True)
class Menu:
    groups: tuple[MenuGroup, ...]
    cap: int

    @property
    def grouped(self) -> bool:
        """Drop-downs only when the flat list would not fit on one line."""
        return sum(len(group.links) for group in self.groups) > FLAT_MAX


def main_menu(user: Any, waiting: Callable[[], int], due_now: Callable[[], int], cap: int) -> Menu:
    """The menu for ``user``; ``waiting`` and ``due_now`` count urgent calls and due requests, asked
    only when the user may open the page they lead to."""
    counts = (waiting() if can(user, Permission.CALLS_URGENT_QUEUE) else 0,
              due_now() if can(user, Permission.REQUESTS_VIEW) else 0)
    # Everything the menu depends on: what ``can`` reads of the user, the counts, the language, the site's root.
    key = (str(get_locale()), request.script_root, frozenset(user.roles), user.email_verified_at is not None,
           counts, cap)
    menus: dict[Any, Menu] = current_app.extensions.setdefault("intake_menus", {})
    menu = menus.get(key)
    if menu is None:
        if len(menus) >= MENUS_MAX:
            menus.clear()
        menu = menus[key] = _build_menu(user, counts, cap)
    return menu


def _build_menu(user: Any, counts: tuple[int, int], cap: int) -> Menu:
    waiting, due = counts
    mine: list[MenuLink] = []
    helpline: list[MenuLink] = []
    records: list[MenuLink] = []
    admin: list[MenuLink] = []
    if can(user, Permission.REQUESTS_OWN):
        mine.append(MenuLink(_("My requests"), url_for("my_requests.index"), "nav-my-requests"))
    if can(user, Permission.CALLS_LOG):
        helpline.append(MenuLink(_("Log a call"), url_for("calls_intake.start"), "nav-log-call"))
    if can(user, Permission.CALLS_VIEW):
        helpline.append(MenuLink(_("Calls"), url_for("calls.index"), "nav-calls"))
    if can(user, Permission.CALLS_URGENT_QUEUE):
        helpline.append(MenuLink(_("Urgent"), url_for("calls.urgent"), "nav-urgent", waiting, _("waiting"),
                                 urgent=True))
    if can(user, Permission.FOLLOWUPS_WORK):
        helpline.append(MenuLink(_("Follow-ups"), url_for("followups.index"), "nav-followups"))
    if can(user, Permission.RESOURCES_USE):
        helpline.append(MenuLink(_("Resources"), url_for("resources.index"), "nav-resources"))
    if can(user, Permission.REQUESTS_VIEW):
        records.append(MenuLink(_("Records queue"),
                               url_for("request_queue.index", tab="overdue" if due else None),
                               "nav-records", due, _("due today or overdue")))
    if can(user, Permission.ARCHIVE_MANAGE):
        records.append(MenuLink(_("Archive"), url_for("archive_admin.index"), "nav-archive"))
    if can(user, Permission.ADMIN_HUB):
        admin.append(MenuLink(_("Admin"), url_for("admin.index"), "nav-admin"))
    groups = tuple(MenuGroup(label, id_, tuple(links)) for label, id_, links in (
        (_("You"), "menu-you", mine), (_("Helpline"), "menu-helpline", helpline),
        (_("Records"), "menu-records", records), (_("Administration"), "menu-admin", admin)) if links)
    return Menu(groups, cap)
