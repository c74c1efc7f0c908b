"""Which GitLab connection serves a project.

`Storage.connection_for` matches project paths against each connection's target. A
project connection whose target is a numeric id would never match a path, so such
connections are also matched on the project id (the target itself, which webhooks
carry), and a project a webhook already tied to its connection keeps that connection.
"""

from __future__ import annotations

from storage import Connection, Storage


def connection_for_project(storage: Storage, path: str, project_id: int | None = None,
                           repository_id: int | None = None) -> Connection | None:
    found = storage.connection_for("gitlab", path)
    if found is not None:
        return found
    for c in storage.connections("gitlab"):
        if c.scope != "project" or not c.target.isdigit():
            continue
        if project_id is not None and (int(c.target) == project_id or c.info.get("project_id") == project_id):
            return c
        if str(c.info.get("path_with_namespace", "")).lower() == path.lower():  # recorded by older versions
            return c
    if repository_id is not None:
        repo = storage.repository(repository_id)
        if repo is not None and repo.connection_id is not None:
            linked = storage.connection(repo.connection_id)
            if linked is not None and linked.forge == "gitlab":
                return linked
    return None
