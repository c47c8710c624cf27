"""``/metrics`` (intake/ops/metrics.py): behind a token, the series the operators watch, no personal
data in any label, and every gunicorn worker's figures added up (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import new_data_key
from intake.extensions import db
from intake.notify.services import queue_email
from intake.ops.jobs import job_run
from intake.users.models import Role
from tests.conftest import PG_URL, ROOT, login

TOKEN = "metrics-token-" + "x" * 24
CANARY = "Zebulon-Quarrington-555-0199"

sys.path.insert(0, str(ROOT / "scripts"))
from crash_harness import Visitor, free_port  # noqa: E402


def scrape(client, token: str = TOKEN):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"})


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{series} not in:\n{text}"
    return float(match.group(1))


def test_without_a_token_configured_there_is_no_endpoint(client):
    assert client.get("/metrics").status_code == 404
    assert scrape(client).status_code == 404


def test_a_wrong_or_missing_token_is_refused(app, client):
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics").status_code == 403
    assert scrape(client, "wrong").status_code == 403
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 403
    assert scrape(client).status_code == 200


def test_the_series_the_operators_watch(app, client, runner):
    app.config["METRICS_TOKEN"] = TOKEN
    with app.app_context():
        queue_email("someone@example.org", "verify_email", "Confirm your address", "body")
        db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context(), pytest.raises(SystemExit):
        with job_run("retention-purge"):
            raise SystemExit(1)
    client.get("/records")
    client.get("/no/such/page")

    response = scrape(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert value(text, 'intake_http_request_duration_seconds_count{endpoint="public.records_guide",method="GET",'
                       'status="200"}') >= 1
    unmatched = 'intake_http_request_duration_seconds_count{endpoint="unmatched",method="GET",status="404"}'
    assert value(text, unmatched) >= 1
    assert value(text, 'intake_outbox_messages{status="pending"}') == 1
    assert value(text, 'intake_outbox_messages{status="failed"}') == 0
    assert 0 <= value(text, "intake_outbox_oldest_pending_age_seconds") < 600
    assert value(text, 'intake_job_last_success_timestamp_seconds{job="audit-verify"}') > time.time() - 600
    assert value(text, 'intake_job_last_failure_timestamp_seconds{job="retention-purge"}') > time.time() - 600
    assert value(text, "intake_audit_last_verified_timestamp_seconds") > time.time() - 600
    assert value(text, "intake_audit_chain_ok") == 1
    assert value(text, "intake_database_up") == 1


def test_no_label_holds_personal_data_a_token_or_an_id(app, client, make_user, make_request):
    """Paths carry references and e-mailed tokens, queries carry names: labels take the endpoint."""
    app.config["METRICS_TOKEN"] = TOKEN
    requester = make_user(Role.REQUESTER)
    reference = make_request(requester, patient_name=CANARY)
    assert login(client, requester.email).status_code == 302
    client.get(f"/my/requests/{reference}")
    client.get(f"/reset/{CANARY}-token")
    client.get(f"/records?name={CANARY}&email={requester.email}")
    client.post("/login", data={"email": f"{CANARY}@example.org", "password": CANARY})
    client.open("/records", method=CANARY.upper()[:10])  # an odd method is "other", never the client's word
    text = scrape(client).get_data(as_text=True)
    for secret in (CANARY, reference, requester.email, CANARY.upper()[:10]):
        assert secret not in text, secret
    labels = set(re.findall(r'endpoint="([^"]*)"', text))
    # Endpoint names only (other tests in this process add their own, such as "explode"): no path, no id.
    assert labels and all(re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?", label) for label in labels), labels


@pytest.mark.skipif(bool(PG_URL), reason="one run is enough: it serves a SQLite copy whatever the pass")
@pytest.mark.slow
def test_every_gunicorn_worker_is_counted(app, tmp_path):
    """Forty requests served by several worker processes (twenty, then a reload that replaces
    every worker, then twenty more): the scrape, answered by one worker, counts all forty."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_DEBUG", "DEBUG", "FLASK_APP")}
    env.update({
        "INTAKE_CONFIG": "production", "INTAKE_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_KEYS": "m1:" + new_data_key(), "BLIND_INDEX_KEY": new_data_key(), "METRICS_TOKEN": TOKEN,
        "AUDIT_KEYS": "a1:" + new_data_key(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
    })
    if env["DATABASE_URL"].startswith("sqlite"):
        env["INTAKE_ALLOW_INSECURE"] = "DATABASE_URL"  # production refuses SQLite unless told, as here
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"left by a server that died")  # emptied at start
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py")],  # noqa: S603
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Visitor(port).send("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text())
        for _ in range(20):
            assert Visitor(port).send("GET", "/records")[0] == 200
        before = {p.name for p in metrics_dir.glob("histogram_*.db")}
        os.kill(server.pid, signal.SIGHUP)  # gunicorn replaces every worker with a new process
        served = 0
        deadline = time.monotonic() + 60
        while served < 20 and time.monotonic() < deadline:
            try:
                if Visitor(port).send("GET", "/records")[0] == 200:
                    served += 1
            except OSError:
                time.sleep(0.1)
        after = {p.name for p in metrics_dir.glob("histogram_*.db")}
        assert served == 20 and after - before, "new worker processes served the second twenty"
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        answer = conn.getresponse()
        text = answer.read().decode()
        assert answer.status == 200, text
        assert value(text, 'intake_http_request_duration_seconds_count{endpoint="public.records_guide",method="GET",'
                           'status="200"}') == 40
        assert not (metrics_dir / "counter_99999.db").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=40)


def test_the_metrics_folder_is_emptied_only_of_metrics_files(tmp_path, monkeypatch):
    import runpy

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "gauge_livesum_1.db").write_text("x")
    (folder / "keep.txt").write_text("x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    conf["_prepare_metrics_folder"]()
    assert sorted(p.name for p in Path(folder).iterdir()) == ["keep.txt"]
