"""``flask alert UNIT``: what systemd's OnFailure= runs when a service or a timer job fails."""

from __future__ import annotations

import socket

import pytest

from intake.notify.sender import DeliveryError
from intake.ops import alerts
from tests.conftest import ROOT


@pytest.fixture()
def sent(monkeypatch):
    outbox = []
    monkeypatch.setattr(alerts, "smtp_send", lambda email, sender, to: outbox.append((email, sender, to)))
    return outbox


def test_an_alert_names_the_unit_and_host_and_goes_to_each_address(app, runner, sent):
    app.config.update(ALERT_EMAIL="it@example.org, oncall@example.org", MAIL_SERVER="smtp.example.org",
                      MAIL_DEFAULT_SENDER="Intake <records@example.org>")
    result = runner.invoke(args=["alert", "intake-job@digest.service"])
    assert result.exit_code == 0, result.output
    assert [to for _, _, to in sent] == ["it@example.org", "oncall@example.org"]
    email, sender, _ = sent[0]
    assert sender == "records@example.org"
    assert email["Subject"] == f"[intake] intake-job@digest.service failed on {socket.gethostname()}"
    body = email.get_content()
    assert "journalctl -u intake-job@digest.service" in body and "/admin/" in body
    assert "ALERT: intake-job@digest.service failed" in result.output


def test_without_a_recipient_or_a_mail_server_it_says_so_and_fails(app, runner, sent):
    result = runner.invoke(args=["alert", "intake.service"])
    assert result.exit_code == 1 and sent == []
    assert "set ALERT_EMAIL and MAIL_SERVER" in result.output


def test_a_failed_delivery_is_reported_without_the_address(app, runner, monkeypatch):
    app.config.update(ALERT_EMAIL="it@example.org", MAIL_SERVER="smtp.example.org")

    def refuse(email, sender, to):
        raise DeliveryError("recipient refused: SMTP 550 5.1.1", permanent=True)

    monkeypatch.setattr(alerts, "smtp_send", refuse)
    result = runner.invoke(args=["alert", "intake-outbox.service"])
    assert result.exit_code == 1
    assert "recipient 1: recipient refused: SMTP 550 5.1.1" in result.output
    assert "it@example.org" not in result.output


@pytest.mark.parametrize("unit", ["", "a b", "x;rm -rf /", "$(id)", "x" * 201])
def test_a_unit_name_is_checked(app, runner, sent, unit):
    app.config.update(ALERT_EMAIL="it@example.org", MAIL_SERVER="smtp.example.org")
    result = runner.invoke(args=["alert", unit])
    assert result.exit_code == 2 and sent == []


def test_every_long_running_unit_and_job_alerts_on_failure():
    folder = ROOT / "deploy" / "systemd"
    for name in ("intake.service", "intake-outbox.service", "intake-job@.service", "intake-backup.service"):
        assert "OnFailure=intake-alert@%n.service" in (folder / name).read_text(), name
    assert "flask --app intake alert %i" in (folder / "intake-alert@.service").read_text()
