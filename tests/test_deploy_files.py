"""Deployment as files (deploy/, Dockerfile, compose.yaml): complete and consistent with the code.

Every setting the app, gunicorn.conf.py and the entrypoint read is in deploy/.env.example and in
docs/configuration.md; the systemd units, the nginx site and the container files say what
docs/deploy.md says they do. (The image cannot be built here; tests/test_entrypoint.py runs its
entrypoint against real services.)
"""

from __future__ import annotations

import re

import pytest
import yaml

import config
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
# Read by the app outside config.py's lists, by gunicorn.conf.py, the entrypoint and prometheus_client.
EXTRA_SETTINGS = {"DATABASE_URL", "INTAKE_CONFIG", "INTAKE_INSTANCE_PATH", "FLASK_DEBUG", "PROMETHEUS_MULTIPROC_DIR"}


def settings_read() -> set[str]:
    names = set(config._ENV_STR) | set(config._ENV_BOOL) | set(config._ENV_INT) | EXTRA_SETTINGS
    sources = [ROOT / "gunicorn.conf.py", ROOT / "config.py", *sorted((ROOT / "intake").rglob("*.py"))]
    pattern = re.compile(r"""(?:environ(?:\.get)?\(?\[?|_env_int\(|env\.get\(|env\[)["']([A-Z][A-Z0-9_]+)["']""")
    for path in sources:
        names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (DEPLOY / "docker-entrypoint.sh").read_text()))
    return names


def test_the_scan_finds_what_it_should():
    found = settings_read()
    assert {"SECRET_KEY", "GUNICORN_BIND", "GUNICORN_WORKERS", "WAIT_FOR_DATABASE_SECONDS", "ALERT_EMAIL"} <= found


@pytest.mark.parametrize("name", sorted(settings_read()))
def test_every_setting_is_in_env_example_and_documented(name):
    example = (DEPLOY / ".env.example").read_text()
    assert re.search(rf"^(# )?{name}=", example, re.M), f"{name} missing from deploy/.env.example"
    assert f"`{name}`" in (ROOT / "docs" / "configuration.md").read_text(), f"{name} missing from docs/configuration.md"


def test_env_example_has_no_comment_after_a_value():
    """systemd's EnvironmentFile takes everything after '=' as the value, a '# comment' included."""
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "#" not in line.split("=", 1)[1], line


def unit(path) -> dict[str, list[str]]:
    """A systemd unit as {"Section.Key": [values]} (keys may repeat)."""
    parsed: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        parsed.setdefault(f"{section}.{key}", []).append(value)
    return parsed


def test_the_units_run_as_intake_with_the_settings_file_and_alert_on_failure():
    for name in ("intake.service", "intake-outbox.service", "intake-job@.service", "intake-alert@.service"):
        parsed = unit(DEPLOY / "systemd" / name)
        assert parsed["Service.User"] == ["intake"], name
        # The settings file first; a job may add its own (the audit job's purge role), optional ("-").
        assert parsed["Service.EnvironmentFile"][0] == "/etc/intake/intake.env", name
        assert all(extra.startswith("-/etc/intake/") for extra in parsed["Service.EnvironmentFile"][1:]), name
        assert parsed["Service.NoNewPrivileges"] == ["yes"], name
    for name in ("intake.service", "intake-outbox.service", "intake-job@.service", "intake-backup.service"):
        assert unit(DEPLOY / "systemd" / name)["Unit.OnFailure"] == ["intake-alert@%n.service"], name
    web = unit(DEPLOY / "systemd" / "intake.service")
    assert web["Service.ExecStart"] == ["/srv/intake/.venv/bin/gunicorn --config /srv/intake/gunicorn.conf.py"]
    for timer in ("digest", "retention", "review", "audit"):
        parsed = unit(DEPLOY / "systemd" / f"intake-{timer}.timer")
        assert parsed["Timer.Unit"] == [f"intake-job@{timer}.service"] and parsed["Timer.Persistent"] == ["true"]
        assert f"    {timer})" in (DEPLOY / "bin" / "intake-job").read_text()


def test_the_nginx_site_forwards_what_the_app_believes():
    site = (DEPLOY / "nginx" / "intake.conf").read_text()
    for line in ("proxy_set_header X-Forwarded-For $remote_addr;", "proxy_set_header X-Forwarded-Proto $scheme;",
                 'proxy_set_header X-Forwarded-Host "";', "client_max_body_size 11m;", "access_log off;",
                 "location = /metrics { return 404; }", "proxy_set_header X-Request-Id $request_id;"):
        assert line in site, line


def test_the_dockerfile_is_multi_stage_slim_non_root_and_compiles_the_catalogues():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) == 2 and all("slim" in stage for stage in stages)
    assert "pip install --require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "pybabel compile -d intake/translations" in dockerfile
    assert re.search(r"^USER intake$", dockerfile, re.M)
    assert 'ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]' in dockerfile
    assert (DEPLOY / "docker-entrypoint.sh").stat().st_mode & 0o111
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv*", ".env", "instance/"} <= set(ignored)


def test_compose_runs_the_whole_local_stack_through_the_entrypoint():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "redis", "mailpit", "app", "worker", "scheduler"}
    assert [services[s]["command"] for s in ("app", "worker", "scheduler")] == [["app"], ["worker"], ["scheduler"]]
    for name in ("app", "worker", "scheduler"):
        env = services[name]["environment"]
        assert env["MAIL_SERVER"] == "mailpit" and env["DATABASE_URL"].startswith("postgresql://")
        assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"  # e-mailed links open the local app
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "/readyz" in " ".join(services["app"]["healthcheck"]["test"])
