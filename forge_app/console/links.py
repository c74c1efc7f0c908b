"""Links into a forge's web UI (repository, pull/merge request, commit, file at a line). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from forge_app.forges.base import WebLinks


@dataclass(frozen=True)
class ForgeWeb:
    """A repository's home on its forge; `base` None when its web address is not known."""

    links: WebLinks | None  # the forge's link formats (None: a forge this server does not know)
    full_name: str
    base: str | None

    @property
    def change(self) -> str:
        """What the forge calls a pull request ("Merge request")."""
        return self.links.change if self.links is not None else "Pull request"

    @property
    def change_ref(self) -> str:
        return self.links.change_ref if self.links is not None else "PR #"

    @property
    def repo(self) -> str | None:
        if self.links is None or not self.base:
            return None
        return f"{self.base.rstrip('/')}/{quote(self.full_name, safe='/')}"

    def pull_request(self, number: int | None) -> str | None:
        if self.repo is None or self.links is None or number is None:
            return None
        return f"{self.repo}/{self.links.pull_request}/{number}"

    def commit(self, sha: str) -> str | None:
        if self.repo is None or self.links is None:
            return None
        return f"{self.repo}/{self.links.commit}/{quote(sha)}"

    def line(self, sha: str | None, path: str, line: int | None) -> str | None:
        if self.repo is None or self.links is None or not sha:
            return None
        return self.links.line(self.repo, quote(sha), quote(path), line)
