"""The seams the code keeps (issue 19), read from the source with ``ast``:

- no module reaches into another module's private names (``from x import _y``, ``x._y``): what two
  modules share is public, named and documented where it lives;
- no form travels through ``g`` (views hand forms over as arguments), and ``g`` is written only by
  the request's own plumbing (request id, signed-in user, CSP nonce, metrics timer);
- no service imports a form: forms are built in the view layer (``*_forms`` modules are imported by
  views, by other form modules and by ``intake/records/page_forms.py``, which views call);
- the records request page is one package (``intake/records/page/``) with two blueprints: every route
  under /queue/requests/ is ``request_queue``'s and every route under /my/requests/ is ``my_requests``',
  and each is a function of that package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "intake"
# Modules that may set attributes on flask.g: the request's plumbing, never a page's data.
G_WRITERS = {"intake/errors.py": {"request_id", "_login_user"}, "intake/security/headers.py": {"csp_nonce"},
             "intake/ops/metrics.py": {"intake_request_started"}}


def modules() -> list[tuple[str, str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        name = relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        found.append((relative, name, ast.parse(path.read_text(encoding="utf-8"), filename=relative)))
    return found


def private_reaches(relative: str, name: str, tree: ast.Module) -> list[str]:
    problems = []
    imported_modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("intake"):
            for alias in node.names:
                if alias.name.startswith("_") and node.module != name:
                    problems.append(f"{relative}:{node.lineno} imports {node.module}.{alias.name}")
                imported_modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("intake"):
                    imported_modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules and node.attr.startswith("_") and not node.attr.startswith("__")):
            problems.append(f"{relative}:{node.lineno} uses {node.value.id}.{node.attr}")
    return problems


def g_writes(relative: str, tree: ast.Module) -> list[str]:
    problems = []
    allowed = G_WRITERS.get(relative, set())
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        for target in targets:
            if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "g"
                    and (target.attr not in allowed or "form" in target.attr)):
                problems.append(f"{relative}:{node.lineno} sets g.{target.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "g"):
            problems.append(f"{relative}:{node.lineno} setattr(g, ...)")
    return problems


def is_view_or_form(relative: str) -> bool:
    stem = relative.rsplit("/", 1)[-1].removesuffix(".py")
    if relative.startswith("intake/records/page/"):  # the request page's route modules
        return True
    return (stem.startswith("views") or stem.endswith("views") or stem.endswith("forms") or stem in {
        "page_forms", "forms", "views", "hub", "audit", "users", "dashboard_views", "export_views", "notice_views",
        "retention_views", "invitation_views", "account", "registration", "reset"})


def forms_in_services(relative: str, tree: ast.Module) -> list[str]:
    if is_view_or_form(relative) or not relative.startswith("intake/records/"):
        return []
    problems = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("intake"):
            names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        if any(n.rsplit(".", 1)[-1].endswith("_forms") for n in names):
            problems.append(f"{relative}:{node.lineno} (a service) imports a form module")
    return problems


def test_no_module_reaches_into_another_s_private_names():
    problems = [p for relative, name, tree in modules() for p in private_reaches(relative, name, tree)]
    assert problems == []


def test_no_form_travels_through_g():
    problems = [p for relative, _name, tree in modules() for p in g_writes(relative, tree)]
    assert problems == []


def test_no_records_service_imports_a_form():
    problems = [p for relative, _name, tree in modules() for p in forms_in_services(relative, tree)]
    assert problems == []


def test_the_checks_catch_what_they_are_for():
    """A guard for the guard: each check flags a module written to break it."""
    bad = ast.parse("from intake.records import views_queue\nfrom intake.records.common import _secret\n"
                    "from flask import g\nfrom intake.records import fee_forms\n"
                    "views_queue._load('x')\ng.document_forms = {}\n")
    assert len(private_reaches("intake/records/x.py", "intake.records.x", bad)) == 2
    assert g_writes("intake/records/x.py", bad) == ["intake/records/x.py:6 sets g.document_forms"]
    assert forms_in_services("intake/records/services.py", bad) == [
        "intake/records/services.py:4 (a service) imports a form module"]
    assert forms_in_services("intake/records/page/fees.py", bad) == []


def test_the_request_page_is_one_package_with_two_blueprints(app):
    """Staff's and the requester's request pages: one package, two blueprints (issue 19)."""
    problems = []
    for rule in app.url_map.iter_rules():
        for prefix, blueprint in (("/queue/requests", "request_queue"), ("/my/requests", "my_requests")):
            if rule.rule == prefix or rule.rule.startswith(prefix + "/"):
                module = app.view_functions[rule.endpoint].__module__
                if rule.endpoint.split(".")[0] != blueprint or not module.startswith("intake.records.page."):
                    problems.append(f"{rule.rule}: {rule.endpoint} in {module}")
    assert problems == []
    assert {bp for bp in app.blueprints if bp in ("request_queue", "my_requests")} == {"request_queue", "my_requests"}


def commits_while_rendering(relative: str, tree: ast.Module) -> list[str]:
    """Functions that draw a template and commit: allowed only to record the view they drew (the
    audit write after the page, ``services.record_view``/``record``), never to save on the side."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
            continue  # a route commits what it saved, then may draw a page on another branch
        calls = [c.func for c in ast.walk(node) if isinstance(c, ast.Call)]
        names = {f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "") for f in calls}
        if "render_template" in names and "commit" in names and not names & {"record_view", "record"}:
            problems.append(f"{relative}:{node.lineno} {node.name} renders and commits")
    return problems


def test_no_page_helper_commits_while_rendering():
    """A helper that draws a page changes nothing (issue 19): the route commits what it saved, and
    an audited page commits only the record of its own view, after drawing it."""
    problems = [p for relative, _name, tree in modules() if relative.startswith("intake/records/")
                for p in commits_while_rendering(relative, tree)]
    assert problems == []
    bad = ast.parse("def page(req):\n    html = render_template('x.html')\n    db.session.commit()\n    return html\n")
    assert commits_while_rendering("intake/records/x.py", bad) == ["intake/records/x.py:1 page renders and commits"]
