"""Persistence for forge-app. All SQL lives in this package.

The interface is named by what the app needs (`accept_delivery`, `claim_job`,
`baseline_for`), not by tables, so a PostgreSQL backend can later sit behind it.
"""

from __future__ import annotations

from storage.commits import CommitStore
from storage.connections import Connection, ConnectionStore
from storage.coordination import CoordinationStore
from storage.database import Database
from storage.deliveries import DeliveryStore
from storage.github import GitHubStore
from storage.integrations import IntegrationStore
from storage.jobs import JobStore
from storage.marketplace import MarketplaceAccount, MarketplaceStore
from storage.records import (
    Job,
    JobSpec,
    NewScan,
    PendingScan,
    Repository,
    ScanEntry,
    ScanRecord,
    StoredFinding,
)
from storage.reviews import ReviewComment, ReviewStore
from storage.scans import ScanStore
from storage.semgrep_ci import SemgrepCiStore
from storage.settings import SettingsStore
from storage.slack import SlackStore
from storage.tokens import TokenStore

__all__ = [
    "Connection",
    "Job",
    "JobSpec",
    "MarketplaceAccount",
    "NewScan",
    "PendingScan",
    "Repository",
    "ReviewComment",
    "ScanEntry",
    "ScanRecord",
    "Storage",
    "StoredFinding",
    "open_storage",
]


class Storage(TokenStore, ScanStore, DeliveryStore, JobStore, SettingsStore, ReviewStore,
              ConnectionStore, IntegrationStore, GitHubStore, CommitStore, MarketplaceStore, SemgrepCiStore,
              SlackStore, CoordinationStore):
    """The app's whole persistence interface, one object."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def ping(self) -> bool:
        """Reachable right now (storage/health.py), for `/readyz`."""
        from storage.health import reachable

        return reachable(self.database)

    def close(self) -> None:
        self.close_intake()
        self.database.close()


def open_storage(path: str) -> Storage:
    """Open (creating if needed) and migrate the database at `path`."""
    database = Database(path)
    database.migrate()
    return Storage(database)
