"""Key rotation: re-encrypt every stored value that is not under the active key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, update

from intake.extensions import Model, db
from intake.security.crypto import Sealed, aad_for, encrypted_columns, keyring, mapped_table

BATCH = 500
# Tables whose encrypted values can be large (a document's content is up to the upload cap,
# 10 MB by default, a third more as base64): a few rows at a time keeps memory flat.
LARGE_VALUE_BATCHES = {"request_document_contents": 5}


def batch_size(table_name: str) -> int:
    """How many rows of this table one batch re-encrypts."""
    return LARGE_VALUE_BATCHES.get(table_name, BATCH)


@dataclass(frozen=True)
class RotatedBatch:
    """One batch of one table: rows read, and values re-encrypted per ``table.column``."""

    table: str
    rows: int
    changed: dict[str, int]


def rotate_batches() -> Iterator[RotatedBatch]:
    """Re-seal old values table by table, in primary-key batches, yielding after each batch's
    updates; the caller commits each one, so an interrupted rotation keeps what it did and the
    next run carries on (values already under the active key are left alone).

    Works on Core rows (no ORM objects), so memory stays flat whatever the table size. A value
    under a key id DATA_KEYS does not hold, or that its key does not open, raises
    ``DecryptionError`` naming the table and column (never the value).
    """
    ring = keyring()
    for mapper in Model.registry.mappers:
        columns = encrypted_columns(mapper)
        if not columns:
            continue
        table = mapped_table(mapper)
        pk = list(table.primary_key.columns)[0]
        names = [name for _, name in columns]
        last = None
        size = batch_size(table.name)
        while True:
            query = select(pk, table.c.uid, *(table.c[n] for n in names)).order_by(pk).limit(size)
            if last is not None:
                query = query.where(pk > last)
            rows = db.session.execute(query).all()
            if not rows:
                break
            changed: dict[str, int] = {}
            for row in rows:
                last = row[0]
                changes = {}
                for name, value in zip(names, row[2:], strict=True):
                    if isinstance(value, Sealed) and value.key_id != ring.active_kid:
                        aad = aad_for(table.name, name, row.uid)
                        changes[name] = ring.seal(ring.open(value, aad), aad)
                        changed[f"{table.name}.{name}"] = changed.get(f"{table.name}.{name}", 0) + 1
                if changes:
                    db.session.execute(update(table).where(pk == row[0]).values(**changes))
            yield RotatedBatch(table.name, len(rows), changed)


def rotate_all() -> dict[str, int]:
    """Every batch in one transaction (the caller commits); ``{"table.column": count}``."""
    counts: dict[str, int] = {}
    for batch in rotate_batches():
        for where, n in batch.changed.items():
            counts[where] = counts.get(where, 0) + n
    return counts
