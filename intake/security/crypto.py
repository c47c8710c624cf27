"""Field encryption and blind indexes.

A column declared ``EncryptedText`` never holds plaintext in the database. The value stored is
``<key id>:<base64url(nonce || AES-256-GCM ciphertext+tag)>``, and the associated data binds it to
its table, column and row (the row's random ``uid``), so a value copied to another row or column
fails to decrypt instead of being read in the wrong place.

How it works with the ORM: on the Python side the attribute holds plain ``str``. Just before an
INSERT or UPDATE, a mapper event seals the changed values; just after, the plaintext is put back.
On load, values are opened. ``EncryptedText`` itself refuses to send an unsealed string to the
database, so a Core statement that bypasses the ORM fails loudly rather than leaking plaintext.

Blind indexes are HMAC-SHA256 of a normalised value under a separate key, with a purpose prefix
so two fields with the same content never share an index value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import weakref
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import Table, Text, event, inspect
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.types import TypeDecorator

NONCE_BYTES = 12


class KeyConfigError(ValueError):
    """The configured keys are missing or malformed."""


class DecryptionError(RuntimeError):
    """A stored value could not be authenticated: tampered, moved, or its key is gone."""


class UnsealedValueError(RuntimeError):
    """Plaintext was about to reach an encrypted column without going through the ORM."""


class Sealed(str):
    """A ciphertext envelope as stored in the database."""

    __slots__ = ()

    @property
    def key_id(self) -> str:
        return self.split(":", 1)[0]


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``"kid:base64key,kid:base64key"``; the first key is the one that encrypts."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid or not kid.isalnum():
            raise KeyConfigError("each key must look like 'kid:base64key' with an alphanumeric kid")
        try:
            raw = _b64decode(b64)
        except (binascii.Error, ValueError) as exc:
            raise KeyConfigError(f"key {kid!r} is not valid base64") from exc
        if len(raw) != 32:
            raise KeyConfigError(f"key {kid!r} must be 32 bytes (AES-256)")
        if any(kid == k for k, _ in keys):
            raise KeyConfigError(f"key id {kid!r} appears twice")
        keys.append((kid, raw))
    if not keys:
        raise KeyConfigError("no key configured")
    return keys


class KeyRing:
    """The data keys (newest first) and the blind-index key."""

    def __init__(self, data_keys: str, blind_index_key: str) -> None:
        parsed = parse_keys(data_keys)
        self.active_kid = parsed[0][0]
        self._aead = {kid: AESGCM(raw) for kid, raw in parsed}
        try:
            self._index_key = _b64decode(blind_index_key or "")
        except (binascii.Error, ValueError) as exc:
            raise KeyConfigError("BLIND_INDEX_KEY is not valid base64") from exc
        if len(self._index_key) < 32:
            raise KeyConfigError("BLIND_INDEX_KEY must be at least 32 bytes")

    @property
    def key_ids(self) -> list[str]:
        return list(self._aead)

    def seal(self, plaintext: str, aad: str) -> Sealed:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = self._aead[self.active_kid].encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        payload = base64.urlsafe_b64encode(nonce + ct).decode("ascii").rstrip("=")
        return Sealed(f"{self.active_kid}:{payload}")

    def open(self, envelope: str, aad: str) -> str:
        kid, sep, payload = envelope.partition(":")
        aead = self._aead.get(kid)
        if not sep or aead is None:
            raise DecryptionError(f"no key {kid!r} for an encrypted value ({aad.rsplit('|', 1)[0]})")
        try:
            raw = _b64decode(payload)
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            # The message names the place, never the content.
            raise DecryptionError(f"encrypted value failed authentication ({aad.rsplit('|', 1)[0]})") from exc

    def blind_index(self, purpose: str, normalized: str) -> str:
        """Deterministic HMAC of an already-normalised value, for exact-match lookups."""
        message = purpose.encode("utf-8") + b"\x00" + normalized.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def keyring() -> KeyRing:
    return current_app.extensions["intake_keyring"]


def new_uid() -> str:
    """A random 128-bit, URL-safe row identifier."""
    return secrets.token_urlsafe(16)


def aad_for(table: str, column: str, uid: str) -> str:
    return f"{table}|{column}|{uid}"


class EncryptedText(TypeDecorator[str]):
    """Text column whose stored value is always a sealed envelope (see module docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return str(value)
        raise UnsealedValueError("refusing to write plaintext to an encrypted column; use the ORM")

    def process_result_value(self, value: Any, dialect: Any) -> Sealed | None:
        return None if value is None else Sealed(value)


_COLUMNS_BY_MAPPER: "weakref.WeakKeyDictionary[Mapper[Any], tuple[tuple[str, str], ...]]" = weakref.WeakKeyDictionary()


def mapped_table(mapper: Mapper[Any]) -> Table:
    """The table a model is mapped to (SQLAlchemy types it as any selectable; ours are tables)."""
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{mapper.class_.__name__} is not mapped to a table")
    return table


def encrypted_columns(mapper: Mapper[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute key, column name) of every EncryptedText column of a mapper, cached."""
    cached = _COLUMNS_BY_MAPPER.get(mapper)
    if cached is None:
        cached = tuple(
            (prop.key, prop.columns[0].name)
            for prop in mapper.column_attrs
            if isinstance(prop.columns[0].type, EncryptedText)
        )
        _COLUMNS_BY_MAPPER[mapper] = cached
    return cached


_STASH = "_intake_plaintext"


def _seal_changed(mapper: Mapper[Any], target: Any, insert: bool) -> None:
    columns = encrypted_columns(mapper)
    if not columns:
        return
    if getattr(target, "uid", None) is None:
        target.uid = new_uid()
    state = inspect(target)
    ring = keyring()
    table = mapped_table(mapper).name
    stash = {}
    for key, column in columns:
        value = state.dict.get(key)
        if value is None or isinstance(value, Sealed):
            continue
        if not insert and key not in state.committed_state:
            continue
        stash[key] = value
        setattr(target, key, ring.seal(str(value), aad_for(table, column, target.uid)))
    target.__dict__[_STASH] = stash


def _restore_plaintext(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    stash = target.__dict__.pop(_STASH, None)
    for key, value in (stash or {}).items():
        attributes.set_committed_value(target, key, value)


def _open_loaded(target: Any, keys: Iterable[str] | None = None) -> None:
    mapper = inspect(target).mapper
    columns = encrypted_columns(mapper)
    if not columns:
        return
    wanted = None if keys is None else set(keys)
    ring = keyring()
    table = mapper.local_table.name
    for key, column in columns:
        if wanted is not None and key not in wanted:
            continue
        value = target.__dict__.get(key)
        if isinstance(value, Sealed):
            attributes.set_committed_value(target, key, ring.open(value, aad_for(table, column, target.uid)))


_REGISTERED: set[type] = set()  # the bases whose hooks are attached (once each)


def register_encryption_events(base: type) -> None:
    """Attach the seal/open hooks to every mapped subclass of ``base``. Call once at import."""
    if base in _REGISTERED:
        return
    event.listen(base, "before_insert", lambda m, c, t: _seal_changed(m, t, insert=True), propagate=True)
    event.listen(base, "before_update", lambda m, c, t: _seal_changed(m, t, insert=False), propagate=True)
    event.listen(base, "after_insert", _restore_plaintext, propagate=True)
    event.listen(base, "after_update", _restore_plaintext, propagate=True)
    event.listen(base, "load", lambda t, ctx: _open_loaded(t), propagate=True)
    event.listen(base, "refresh", lambda t, ctx, attrs: _open_loaded(t, attrs), propagate=True)
    _REGISTERED.add(base)
