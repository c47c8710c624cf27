"""Field encryption: no plaintext at rest, tampering fails loudly, rotation keeps data readable."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import StatementError

from intake.extensions import db
from intake.security.crypto import (
    DecryptionError,
    KeyConfigError,
    KeyRing,
    Sealed,
    UnsealedValueError,
    parse_keys,
)
from intake.users.models import Role, User
from intake.users.services import create_user, email_index, find_by_email
from tests.conftest import PASSWORD, make_app

CANARY = "canary.d41d8c@example.org"


def key(byte: int) -> str:
    return base64.urlsafe_b64encode(bytes([byte]) * 32).decode()


def raw_email(user_id: int) -> str:
    return db.session.execute(text("SELECT email FROM users WHERE id = :i"), {"i": user_id}).scalar_one()


def test_plaintext_never_reaches_the_database(app):
    with app.app_context():
        user = create_user(CANARY, Role.REQUESTER, PASSWORD)
        db.session.commit()
        stored = raw_email(user.id)
        assert CANARY not in stored and stored.startswith("t2:")
        if db.engine.dialect.name == "sqlite":
            path = Path(db.engine.url.database)
            files = [path, *path.parent.glob(path.name + "-*")]  # the database and its WAL
            for file in files:
                assert CANARY.encode() not in file.read_bytes(), f"plaintext found in {file.name}"
                assert CANARY.split("@")[0].encode() not in file.read_bytes()
        else:
            dump = db.session.execute(text("SELECT string_agg(t::text, '|') FROM users t")).scalar_one()
            assert CANARY not in dump


def test_values_read_back_and_are_found_by_blind_index(ctx):
    user = create_user("Someone.Real@Example.org", Role.REQUESTER, PASSWORD)
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.get(User, user.id)
    assert loaded.email == "Someone.Real@Example.org"
    assert find_by_email("  someone.real@example.ORG ").id == user.id
    assert email_index("a@example.org") == email_index("A@EXAMPLE.ORG")


def test_same_plaintext_encrypts_differently(ctx):
    a = create_user("twin-a@example.org", Role.REQUESTER, PASSWORD)
    b = create_user("twin-b@example.org", Role.REQUESTER, PASSWORD)
    db.session.commit()
    ring = KeyRing(f"k1:{key(1)}", key(3))
    assert ring.seal("same", "x") != ring.seal("same", "x")  # random nonce
    assert raw_email(a.id) != raw_email(b.id)


def test_a_tampered_value_fails_loudly(ctx):
    user_id = create_user("tamper@example.org", Role.REQUESTER, PASSWORD).id
    db.session.commit()
    stored = raw_email(user_id)
    kid, payload = stored.split(":", 1)
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    db.session.execute(text("UPDATE users SET email = :e WHERE id = :i"), {"e": f"{kid}:{flipped}", "i": user_id})
    db.session.commit()
    db.session.expunge_all()
    with pytest.raises(DecryptionError) as caught:
        db.session.get(User, user_id)
    assert "tamper" not in str(caught.value)  # the error names the place, never the content
    db.session.rollback()


def test_a_value_moved_to_another_row_fails(ctx):
    a = create_user("row-a@example.org", Role.REQUESTER, PASSWORD).id
    b = create_user("row-b@example.org", Role.REQUESTER, PASSWORD).id
    db.session.commit()
    db.session.execute(text("UPDATE users SET email = :e WHERE id = :i"), {"e": raw_email(a), "i": b})
    db.session.commit()
    db.session.expunge_all()
    assert db.session.get(User, a).email == "row-a@example.org"
    with pytest.raises(DecryptionError):
        db.session.get(User, b)
    db.session.rollback()


def test_an_unknown_key_id_fails(ctx):
    user_id = create_user("gone@example.org", Role.REQUESTER, PASSWORD).id
    db.session.commit()
    db.session.execute(text("UPDATE users SET email = :e WHERE id = :i"),
                       {"e": "zz" + raw_email(user_id)[2:], "i": user_id})
    db.session.commit()
    db.session.expunge_all()
    with pytest.raises(DecryptionError, match="no key"):
        db.session.get(User, user_id)
    db.session.rollback()


def test_core_statements_cannot_write_plaintext(ctx):
    with pytest.raises(StatementError) as caught:
        db.session.execute(insert(User.__table__).values(
            uid="u" * 22, email="plain@example.org", email_index="0" * 64,
            active=True, session_version=1))
    assert isinstance(caught.value.orig, UnsealedValueError)
    db.session.rollback()
    assert db.session.execute(select(User)).first() is None


def test_updates_are_encrypted_too(ctx):
    user = create_user("before@example.org", Role.REQUESTER, PASSWORD)
    db.session.commit()
    first = raw_email(user.id)
    user.email = "after@example.org"
    user.email_index = email_index("after@example.org")
    db.session.commit()
    assert raw_email(user.id) != first and "after" not in raw_email(user.id)
    assert user.email == "after@example.org"  # the object keeps its plaintext after the flush
    db.session.expunge_all()
    assert db.session.get(User, user.id).email == "after@example.org"


def test_rotation_keeps_every_value_readable(tmp_path, template_db, app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    old = make_app(url, tmp_path / "i1", DATA_KEYS=f"old1:{key(0x11)}")
    with old.app_context():
        ids = [create_user(f"person{i}@example.org", Role.REQUESTER, PASSWORD).id for i in range(7)]
        db.session.commit()
        assert all(raw_email(i).startswith("old1:") for i in ids)
        db.engine.dispose()

    both = make_app(url, tmp_path / "i2", DATA_KEYS=f"new2:{key(0x22)},old1:{key(0x11)}")
    with both.app_context():
        assert db.session.get(User, ids[0]).email == "person0@example.org"  # old key still decrypts
        created = create_user("fresh@example.org", Role.REQUESTER, PASSWORD)
        db.session.commit()
        assert raw_email(created.id).startswith("new2:")  # newest key encrypts
        result = both.test_cli_runner().invoke(args=["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "users.email: 7 value(s) re-encrypted" in result.output
        assert all(raw_email(i).startswith("new2:") for i in ids)
        again = both.test_cli_runner().invoke(args=["keys", "rotate"])
        assert "Done: 0 value(s)" in again.output
        db.engine.dispose()

    new_only = make_app(url, tmp_path / "i3", DATA_KEYS=f"new2:{key(0x22)}")
    with new_only.app_context():
        emails = {db.session.get(User, i).email for i in ids}
        assert emails == {f"person{i}@example.org" for i in range(7)}
        db.engine.dispose()


@pytest.mark.parametrize("spec,message", [
    ("", "no key"),
    ("nokid", "kid:base64key"),
    ("k1:not base64!!", "base64"),
    (f"k1:{base64.urlsafe_b64encode(b'short').decode()}", "32 bytes"),
    (f"k1:{key(1)},k1:{key(2)}", "twice"),
    (f"k-1:{key(1)}", "alphanumeric"),
])
def test_bad_key_configuration_is_refused(spec, message):
    with pytest.raises(KeyConfigError, match=message):
        parse_keys(spec)


def test_blind_indexes_are_separated_by_purpose():
    ring = KeyRing(f"k1:{key(1)}", key(3))
    assert ring.blind_index("user.email", "x") != ring.blind_index("caller.phone", "x")
    assert ring.blind_index("user.email", "x") == ring.blind_index("user.email", "x")
    other = KeyRing(f"k1:{key(1)}", key(4))
    assert other.blind_index("user.email", "x") != ring.blind_index("user.email", "x")


def test_sealed_envelope_names_its_key():
    ring = KeyRing(f"k7:{key(7)}", key(3))
    sealed = ring.seal("hello", "users|email|abc")
    assert isinstance(sealed, Sealed) and sealed.key_id == "k7"
    assert ring.open(sealed, "users|email|abc") == "hello"
    with pytest.raises(DecryptionError):
        ring.open(sealed, "users|email|other-row")
