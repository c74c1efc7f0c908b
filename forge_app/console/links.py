"""Links into a forge's web UI (repository, pull/merge request, commit, file at a line). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ForgeWeb:
    """A repository's home on its forge; `base` None when its web address is not known."""

    forge: str
    full_name: str
    base: str | None

    @property
    def repo(self) -> str | None:
        return f"{self.base.rstrip('/')}/{quote(self.full_name, safe='/')}" if self.base else None

    def pull_request(self, number: int | None) -> str | None:
        if self.repo is None or number is None:
            return None
        part = {"github": "pull", "gitlab": "-/merge_requests", "bitbucket": "pull-requests"}.get(self.forge, "pull")
        return f"{self.repo}/{part}/{number}"

    def commit(self, sha: str) -> str | None:
        if self.repo is None:
            return None
        part = {"gitlab": "-/commit", "bitbucket": "commits"}.get(self.forge, "commit")
        return f"{self.repo}/{part}/{quote(sha)}"

    def line(self, sha: str | None, path: str, line: int | None) -> str | None:
        if self.repo is None or not sha:
            return None
        p = quote(path)
        if self.forge == "bitbucket":
            return f"{self.repo}/src/{quote(sha)}/{p}" + (f"#lines-{line}" if line else "")
        part = "-/blob" if self.forge == "gitlab" else "blob"
        return f"{self.repo}/{part}/{quote(sha)}/{p}" + (f"#L{line}" if line else "")


def web_base(forge: str, github_web_url: str, bitbucket_api_url: str, gitlab_base: str | None) -> str | None:
    """The forge's web root: GitHub's configured web URL, Bitbucket Cloud, a GitLab connection's base URL."""
    if forge == "github":
        return github_web_url
    if forge == "bitbucket":
        return "https://bitbucket.org" if bitbucket_api_url.rstrip("/") == "https://api.bitbucket.org/2.0" else None
    if forge == "gitlab":
        return gitlab_base.rstrip("/").removesuffix("/api/v4") if gitlab_base else None
    return None
