"""The main menu: the links a person's roles open, grouped by the work they belong to.

One person may hold several roles (intake/permissions.py); an administrator who also works the
helpline and the records queue would otherwise face a dozen links that wrap onto two lines at a
laptop's width. So the links come in groups (the helpline, the records office, administration), and
a menu with more than ``FLAT_MAX`` links shows each group of several as one drop-down. A count on a
link (urgent calls waiting, requests due today or overdue) is repeated on its group's button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_babel import gettext as _

from intake.permissions import Permission, can

FLAT_MAX = 6  # links that fit on one line at 1280 px beside the name, the language switch and sign-out


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
    links: list[MenuLink] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(link.count for link in self.links)

    @property
    def urgent(self) -> bool:
        return any(link.urgent and link.count for link in self.links)


@dataclass(frozen=True)
class Menu:
    groups: list[MenuGroup]
    cap: int

    @property
    def grouped(self) -> bool:
        """Drop-downs only when the flat list would not fit on one line."""
        return sum(len(group.links) for group in self.groups) > FLAT_MAX


def main_menu(user: Any, waiting: Callable[[], int], due_now: Callable[[], int], cap: int) -> Menu:
    """The menu for ``user``; ``waiting`` and ``due_now`` count urgent calls and due requests, asked
    only when the user may open the page they lead to."""
    mine = MenuGroup(_("You"), "menu-you")
    helpline = MenuGroup(_("Helpline"), "menu-helpline")
    records = MenuGroup(_("Records"), "menu-records")
    admin = MenuGroup(_("Administration"), "menu-admin")
    if can(user, Permission.REQUESTS_OWN):
        mine.links.append(MenuLink(_("My requests"), url_for("my_requests.index"), "nav-my-requests"))
    if can(user, Permission.CALLS_LOG):
        helpline.links.append(MenuLink(_("Log a call"), url_for("calls_intake.start"), "nav-log-call"))
    if can(user, Permission.CALLS_VIEW):
        helpline.links.append(MenuLink(_("Calls"), url_for("calls.index"), "nav-calls"))
    if can(user, Permission.CALLS_URGENT_QUEUE):
        helpline.links.append(MenuLink(_("Urgent"), url_for("calls.urgent"), "nav-urgent", waiting(), _("waiting"),
                                       urgent=True))
    if can(user, Permission.FOLLOWUPS_WORK):
        helpline.links.append(MenuLink(_("Follow-ups"), url_for("followups.index"), "nav-followups"))
    if can(user, Permission.RESOURCES_USE):
        helpline.links.append(MenuLink(_("Resources"), url_for("resources.index"), "nav-resources"))
    if can(user, Permission.REQUESTS_VIEW):
        due = due_now()
        records.links.append(MenuLink(_("Records queue"),
                                      url_for("request_queue.index", tab="overdue" if due else None),
                                      "nav-records", due, _("due today or overdue")))
    if can(user, Permission.ARCHIVE_MANAGE):
        records.links.append(MenuLink(_("Archive"), url_for("archive_admin.index"), "nav-archive"))
    if can(user, Permission.ADMIN_HUB):
        admin.links.append(MenuLink(_("Admin"), url_for("admin.index"), "nav-admin"))
    groups = [group for group in (mine, helpline, records, admin) if group.links]
    return Menu(groups, cap)
