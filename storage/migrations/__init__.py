"""Versioned schema migrations, applied in name order at start-up.

Each module `NNNN_name.py` defines `apply(db: sqlite_utils.Database) -> None`.
A migration runs once, inside the same transaction that records it in
`schema_migrations`, so a crash half-way leaves the schema as it was.
"""
