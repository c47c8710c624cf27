"""Translations can't be forgotten, and /healthz and /readyz say what a load balancer needs.

The compiled catalogues (.mo) are not in git; without them Spanish readers silently got English.
The app now refuses to start with one line naming the catalogue, ``flask security-check`` names it,
and ``/readyz`` fails; so does ``/readyz`` when the schema is behind the migrations or Redis is down.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade

from intake import RefusedToStart
from intake.catalogues import catalogue_problems, compile_catalogues
from intake.records import letter_pdf
from tests.conftest import ROOT, make_app, need_service

TRANSLATIONS = ROOT / "intake" / "translations"


@pytest.fixture()
def catalogue_copy(tmp_path: Path) -> Path:
    """A translations folder of the test's own holding only the Spanish .po (no compiled .mo)."""
    folder = tmp_path / "translations"
    (folder / "es" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy2(TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po", folder / "es" / "LC_MESSAGES" / "messages.po")
    return folder


def build(app, tmp_path: Path, folder: Path, name: str = "instance"):
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / name, BABEL_TRANSLATION_DIRECTORIES=str(folder))


def test_the_app_refuses_to_start_without_a_compiled_catalogue(app, tmp_path, catalogue_copy):
    with pytest.raises(RefusedToStart) as refused:
        build(app, tmp_path, catalogue_copy)
    message = str(refused.value)
    assert "\n" not in message, "one line"
    assert message.startswith("Refusing to start: the 'es' translation catalogue")
    assert str(catalogue_copy / "es" / "LC_MESSAGES" / "messages.mo") in message and "is missing" in message
    assert "pybabel compile" in message


def test_the_app_refuses_a_catalogue_older_than_its_po(app, tmp_path, catalogue_copy):
    assert compile_catalogues(catalogue_copy) == [catalogue_copy / "es" / "LC_MESSAGES" / "messages.mo"]
    build(app, tmp_path, catalogue_copy, "compiled")  # starts
    folder = catalogue_copy / "es" / "LC_MESSAGES"
    po, mo = folder / "messages.po", folder / "messages.mo"
    os.utime(po, None)  # someone edited the .po (a git pull) and nobody compiled it since
    earlier = time.time() - 60
    os.utime(mo, (earlier, earlier))
    with pytest.raises(RefusedToStart, match="is older than its messages.po"):
        build(app, tmp_path, catalogue_copy, "stale")
    assert compile_catalogues(catalogue_copy)  # compiled again: it starts
    assert compile_catalogues(catalogue_copy) == []  # and nothing is left to compile
    build(app, tmp_path, catalogue_copy, "again")


def test_a_language_without_any_catalogue_is_refused(app, tmp_path, catalogue_copy):
    with pytest.raises(RefusedToStart, match="no translation catalogue for 'fr'"):
        make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "i", LANGUAGES=("en", "es", "fr"),
                 BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS))


def test_the_compiled_catalogue_serves_spanish(app, tmp_path, catalogue_copy):
    compile_catalogues(catalogue_copy)
    served = build(app, tmp_path, catalogue_copy)
    page = served.test_client().get("/records", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert 'lang="es"' in page and "expedientes" in page


def test_security_check_and_readiness_name_a_catalogue_gone_missing(app, tmp_path, catalogue_copy):
    compile_catalogues(catalogue_copy)
    served = build(app, tmp_path, catalogue_copy)
    client = served.test_client()
    assert client.get("/readyz").get_json()["checks"]["translations"] == "compiled"
    (catalogue_copy / "es" / "LC_MESSAGES" / "messages.mo").unlink()  # a deploy that forgot to compile

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["translations"] == "not compiled"
    result = served.test_cli_runner().invoke(args=["security-check"])
    assert result.exit_code == 1
    assert "the 'es' translation catalogue" in result.output and "is missing" in result.output


def test_catalogue_problems_is_empty_for_the_repository_after_make():
    assert catalogue_problems({"LANGUAGES": ("en", "es")}, str(ROOT / "intake")) == []


def test_healthz_is_liveness_only(app, client):
    """The process answers: no database, no Redis, no files (an outage must not restart every instance)."""
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:////nonexistent/never.sqlite3"
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_fails_when_the_schema_is_behind_the_migrations(app, client):
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        downgrade(revision="-1")  # as if new code were deployed before "db upgrade"
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "up"
        assert body["checks"]["schema"].startswith("not at the migrations' head")
    finally:
        with app.app_context():
            upgrade()
    assert client.get("/readyz").status_code == 200


def test_readyz_on_an_empty_database(tmp_path):
    empty = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path / "instance")
    response = empty.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "up", "schema": "empty", "redis": "not configured",
                                             "translations": "compiled",
                                             "letter_pdf": "available" if letter_pdf.available() else "unavailable"}


def test_readyz_checks_redis_when_it_is_configured(app, tmp_path):
    down = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "down", REDIS_URL="redis://127.0.0.1:1/0")
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "down"
    assert "127.0.0.1" not in response.get_data(as_text=True)

    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        need_service("Redis", str(exc))
    up = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "up", REDIS_URL="redis://127.0.0.1:6379/0")
    response = up.test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["checks"]["redis"] == "up"
