"""The encrypted backup file format (version 1).

Layout::

    MAGIC (14 bytes) | header length (4 bytes, big-endian) | header (JSON, UTF-8) | chunk | chunk | ...
    chunk = ciphertext length (4 bytes, big-endian) | AES-256-GCM(ciphertext + 16-byte tag)

The header is not secret (format, key id, salt, nonce prefix, chunk size and the manifest: created_at,
alembic revision, per-table row counts, audit chain head) but it is authenticated: its SHA-256 is part
of every chunk's associated data. The file key is HKDF-SHA256(data key, salt = 32 random bytes per file,
info = "intake-backup-v1|<key id>"), so every file has its own key and the 12-byte nonce
(4 random bytes + 8-byte chunk index) never repeats under it. Each chunk's associated data also binds
its index and a final-chunk flag: chunks cannot be reordered, dropped, duplicated or cut off after the
last one without the file failing to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"INTAKE-BACKUP\x00"
FORMAT_VERSION = 1
CHUNK_BYTES = 1024 * 1024  # plaintext per chunk; tests lower it to get many chunks
MAX_CHUNK_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
TAG_BYTES = 16
_LENGTH = struct.Struct(">I")
_AAD_TAIL = struct.Struct(">QB")


class BackupFormatError(ValueError):
    """The file is not a backup, was changed or cut short, or the key is wrong (message says which)."""


def file_key(data_key: bytes, salt: bytes, key_id: str) -> bytes:
    """The per-file AES-256 key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"intake-backup-v1|" + key_id.encode())
    return hkdf.derive(data_key)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">Q", index)


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + _AAD_TAIL.pack(index, 1 if final else 0)


def write_backup(plain: BinaryIO, out: BinaryIO, *, key: bytes, key_id: str, manifest: dict[str, Any],
                 chunk_bytes: int | None = None, progress: Callable[[int], None] | None = None) -> None:
    """Encrypt everything ``plain`` holds into ``out``, with ``manifest`` in the header; ``progress``
    hears the plaintext bytes of each chunk written."""
    size = chunk_bytes or CHUNK_BYTES
    salt, prefix = secrets.token_bytes(32), secrets.token_bytes(4)
    header = json.dumps({
        "format": FORMAT_VERSION, "cipher": "AES-256-GCM", "kdf": "HKDF-SHA256", "key_id": key_id,
        "salt": base64.b64encode(salt).decode(), "nonce_prefix": base64.b64encode(prefix).decode(),
        "chunk_bytes": size, "manifest": manifest,
    }, sort_keys=True, separators=(",", ":")).encode("utf-8")
    opening = MAGIC + _LENGTH.pack(len(header)) + header
    digest = hashlib.sha256(opening).digest()
    aead = AESGCM(file_key(key, salt, key_id))
    out.write(opening)
    index, current = 0, plain.read(size)
    while True:
        following = plain.read(size)  # read ahead: the last chunk must know it is the last
        final = not following
        sealed = aead.encrypt(_nonce(prefix, index), current, _aad(digest, index, final))
        out.write(_LENGTH.pack(len(sealed)) + sealed)
        if progress is not None:
            progress(len(current))
        if final:
            return
        index, current = index + 1, following


def _read_exact(handle: BinaryIO, n: int, what: str) -> bytes:
    data = handle.read(n)
    if len(data) != n:
        raise BackupFormatError(f"the file is truncated (it ends inside the {what})")
    return data


def read_header(handle: BinaryIO) -> tuple[dict[str, Any], bytes]:
    """The parsed header (not yet authenticated) and the digest every chunk binds."""
    if handle.read(len(MAGIC)) != MAGIC:
        raise BackupFormatError("it is not an intake backup file")
    (length,) = _LENGTH.unpack(_read_exact(handle, _LENGTH.size, "header"))
    if length > MAX_HEADER_BYTES:
        raise BackupFormatError("its header is implausibly large")
    raw = _read_exact(handle, length, "header")
    try:
        header = json.loads(raw.decode("utf-8"))
        if header["format"] != FORMAT_VERSION:
            raise BackupFormatError(f"it uses format {header['format']!r}; this app reads format {FORMAT_VERSION}")
        salt, prefix = base64.b64decode(header["salt"]), base64.b64decode(header["nonce_prefix"])
        if len(salt) != 32 or len(prefix) != 4 or not str(header["key_id"]).isalnum():
            raise ValueError("bad salt, nonce prefix or key id")
        if not 0 < int(header["chunk_bytes"]) <= MAX_CHUNK_BYTES or not isinstance(header["manifest"], dict):
            raise ValueError("bad chunk size or manifest")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BackupFormatError("its header is damaged") from exc
    return header, hashlib.sha256(MAGIC + _LENGTH.pack(length) + raw).digest()


def read_backup(handle: BinaryIO, out: BinaryIO, key_for: Callable[[str], bytes],
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Authenticate and decrypt ``handle`` into ``out``; return the manifest once all of it verified.
    ``progress`` hears the bytes of the file read for each chunk.

    ``key_for(key_id)`` returns the data key named in the header (or raises). Raises
    BackupFormatError for a wrong key, any changed byte, a missing or extra chunk.
    """
    header, digest = read_header(handle)
    aead = AESGCM(file_key(key_for(header["key_id"]), base64.b64decode(header["salt"]), header["key_id"]))
    prefix, limit = base64.b64decode(header["nonce_prefix"]), int(header["chunk_bytes"]) + TAG_BYTES
    index = 0
    while True:
        length_bytes = handle.read(_LENGTH.size)
        if not length_bytes:
            raise BackupFormatError("the file is truncated (its last part is missing)")
        if len(length_bytes) != _LENGTH.size:
            raise BackupFormatError("the file is truncated (it ends inside a chunk)")
        (length,) = _LENGTH.unpack(length_bytes)
        if not TAG_BYTES <= length <= limit:
            raise BackupFormatError(f"part {index} has an impossible length: the file was changed")
        sealed = _read_exact(handle, length, f"part {index}")
        plain, final = _open_chunk(aead, prefix, digest, index, sealed)
        out.write(plain)
        if progress is not None:
            progress(_LENGTH.size + length)
        if final:
            break
        index += 1
    if handle.read(1):
        raise BackupFormatError("there are extra bytes after its last part: the file was changed")
    return header["manifest"]


def _open_chunk(aead: AESGCM, prefix: bytes, digest: bytes, index: int, sealed: bytes) -> tuple[bytes, bool]:
    """Decrypt chunk ``index``, learning from which AAD verifies whether it is the final one."""
    nonce = _nonce(prefix, index)
    for final in (False, True):
        try:
            return aead.decrypt(nonce, sealed, _aad(digest, index, final)), final
        except InvalidTag:
            continue
    if index == 0:
        raise BackupFormatError("it cannot be authenticated: the key is wrong (a different key under the same "
                                "key id) or the file was changed")
    raise BackupFormatError(f"part {index} failed authentication: the file was changed or damaged")
