"""Big findings webhooks go out in parts (at most 1,000 findings or 1 MB per POST): a delivery
remembers how many parts were accepted, so a retry resumes at the first one that was not."""

from __future__ import annotations

import sqlite_utils


def apply(db: sqlite_utils.Database) -> None:
    db["notification_deliveries"].add_column("parts_sent", int)
