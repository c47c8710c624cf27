"""Rate-limit counters live in Redis when REDIS_URL is set, so every app instance shares them."""

from __future__ import annotations

import uuid

import pytest

from intake.extensions import limiter
from intake.permissions import PUBLIC_ENDPOINTS
from tests.conftest import make_app, need_service

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture()
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        need_service("Redis", str(exc))
    yield client
    client.close()


def test_limits_are_counted_in_redis_and_answer_429(tmp_path, redis_client, monkeypatch):
    prefix = f"intake-test-{uuid.uuid4().hex}"
    app = make_app(f"sqlite:///{tmp_path / 'r.sqlite3'}", tmp_path / "instance", RATELIMIT_ENABLED=True,
                   RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
    # A public probe endpoint limited to 2 a minute (public so the policy guard lets it through).
    monkeypatch.setattr("intake.permissions.PUBLIC_ENDPOINTS", PUBLIC_ENDPOINTS | {"limited_probe"})
    app.add_url_rule("/limited-probe", "limited_probe", limiter.limit("2 per minute")(lambda: "ok"))
    client = app.test_client()
    try:
        assert [client.get("/limited-probe").status_code for _ in range(3)] == [200, 200, 429]
        page = client.get("/limited-probe")
        assert page.status_code == 429 and "Too many attempts" in page.get_data(as_text=True)
        assert redis_client.keys(f"*{prefix}*"), "the counter should be stored in Redis"
    finally:
        for key in redis_client.scan_iter(f"*{prefix}*"):
            redis_client.delete(key)
