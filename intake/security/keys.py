"""Key rotation: re-encrypt every stored value that is not under the active key."""

from __future__ import annotations

from sqlalchemy import select, update

from intake.extensions import db
from intake.security.crypto import Sealed, aad_for, encrypted_columns, keyring

BATCH = 500
# Tables whose encrypted values can be large (a document's content is up to the upload cap,
# 10 MB by default, a third more as base64): a few rows at a time keeps memory flat.
LARGE_VALUE_BATCHES = {"request_document_contents": 5}


def batch_size(table_name: str) -> int:
    """How many rows of this table one batch re-encrypts."""
    return LARGE_VALUE_BATCHES.get(table_name, BATCH)


def rotate_all() -> dict[str, int]:
    """Re-seal old values table by table, in primary-key batches; the caller commits.

    Works on Core rows (no ORM objects), so memory stays flat whatever the table size.
    Returns ``{"table.column": count}``.
    """
    ring = keyring()
    counts: dict[str, int] = {}
    for mapper in db.Model.registry.mappers:
        columns = encrypted_columns(mapper)
        if not columns:
            continue
        table = mapper.local_table
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
            for row in rows:
                last = row[0]
                changes = {}
                for name, value in zip(names, row[2:], strict=True):
                    if isinstance(value, Sealed) and value.key_id != ring.active_kid:
                        aad = aad_for(table.name, name, row.uid)
                        changes[name] = ring.seal(ring.open(value, aad), aad)
                        counts[f"{table.name}.{name}"] = counts.get(f"{table.name}.{name}", 0) + 1
                if changes:
                    db.session.execute(update(table).where(pk == row[0]).values(**changes))
    return counts
