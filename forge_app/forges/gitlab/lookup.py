"""Which GitLab connection serves a project.

`Storage.connection_for` matches project paths against each connection's target. A
project connection whose target is a numeric id would never match a path, so such
connections are also matched on the project id / path the connection check recorded.
"""

from __future__ import annotations

from storage import Connection, Storage


def connection_for_project(storage: Storage, path: str, project_id: int | None = None) -> Connection | None:
    found = storage.connection_for("gitlab", path)
    if found is not None:
        return found
    for c in storage.connections("gitlab"):
        if c.scope != "project" or not c.target.isdigit():
            continue
        if project_id is not None and c.info.get("project_id") == project_id:
            return c
        if str(c.info.get("path_with_namespace", "")).lower() == path.lower():
            return c
    return None
