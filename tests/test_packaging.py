"""Packaging and habits: pyproject.toml, the hashed locks agree with the pins, the Makefile's Python
check, the pre-commit hooks, and `make run`'s first-hour help (users status names the demo)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib

import yaml

from intake.users.models import Role
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import check_lock  # noqa: E402


def test_pyproject_says_python_3_11_and_holds_the_tools_settings():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
    assert {"ruff", "pytest", "mypy"} <= set(project["tool"])
    assert project["tool"]["pytest"]["ini_options"]["addopts"] == "-ra --strict-markers"
    assert not (ROOT / "pytest.ini").exists() and not (ROOT / "ruff.toml").exists()  # one place for settings


def test_the_locks_match_the_pins_and_carry_hashes():
    assert check_lock.problems(ROOT / "requirements.txt", ROOT / "requirements.lock") == []
    assert check_lock.problems(ROOT / "requirements-test.txt", ROOT / "requirements-test.lock") == []


def test_a_pin_changed_without_make_lock_is_caught(tmp_path):
    for name in ("requirements.txt", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    source = tmp_path / "requirements.txt"
    source.write_text(source.read_text().replace("Flask==3.1.3", "Flask==3.1.2") + "newthing==1.0\n")
    found = check_lock.problems(source, tmp_path / "requirements.lock")
    assert "flask==3.1.2 is in requirements.txt but requirements.lock has 3.1.3: run make lock" in found
    assert "newthing==1.0 is in requirements.txt but requirements.lock has nothing: run make lock" in found
    lock = tmp_path / "requirements.lock"
    lock.write_text(lock.read_text() + "unhashed==2.0\n")
    assert "unhashed has no hash in requirements.lock: run make lock" in check_lock.problems(source, lock)


def test_the_makefile_names_what_to_install_for_an_old_python():
    old = shutil.which("python3.6") or "/root/.pyenv/versions/3.10.13/bin/python"
    result = subprocess.run(["make", "--no-print-directory", "python-check", f"PYTHON={old}"], cwd=ROOT,  # noqa: S603,S607
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "intake needs 3.11 or newer" in result.stdout or "intake needs Python 3.11 or newer" in result.stdout
    missing = subprocess.run(["make", "--no-print-directory", "python-check", "PYTHON=no-such-python3"],  # noqa: S603,S607
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "no-such-python3 was not found" in missing.stdout
    assert "PYTHON ?= python3\n" in (ROOT / "Makefile").read_text()


def test_the_hooks_run_the_same_checks_as_ci():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "lock", "mypy", "translations"} <= set(hooks)
    assert hooks["ruff"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy"


def test_users_status_offers_the_demo_and_names_demo_accounts(app, runner, make_user):
    empty = runner.invoke(args=["users", "status"]).output
    assert "make demo" in empty and "No admin account exists yet" in empty
    make_user(Role.ADMIN, email="demo-admin@example.org")
    make_user(Role.OPERATOR, email="demo-operator@example.org")
    named = runner.invoke(args=["users", "status"]).output
    assert "Demo accounts: demo-operator@example.org, demo-admin@example.org." in named
    assert "Forgot your password?" in named


def test_make_run_serves_the_links_and_the_sender_where_it_listens():
    makefile = (ROOT / "Makefile").read_text()
    assert "PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)" in makefile
    run = makefile[makefile.index("\nrun:"):makefile.index("\ndemo:")]
    assert "outbox send --watch" in run and "PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) run" in run
    assert "demo seed --with-staff" in makefile
