"""forge-app as a GitHub App.

- `manifest` / `registration`: registering the app from `app.yml` (GitHub's manifest flow);
- `credentials`: the app id, key and webhook secret (environment first, then storage);
- `http` / `tokens`: gidgethub calls as the app (JWT) or as one installation (cached token);
- `webhook` / `sansio` / `events` / `behaviours`: verified, de-duplicated deliveries, processed as jobs;
- `client` / `checks`: the ForgeClient the generic publish flow drives;
- `publish`: the `publish_scan` publisher;
- `forge`: the one description of GitHub the registry lists.
"""

from __future__ import annotations

from forge_app.core.escape import gfm
from forge_app.core.review.style import Rendering

CHECK_NAME = "forge-app"

RENDERING = Rendering(markdown=gfm, hidden_html_comments=True, comments_on_context_lines=True, suggestion="range")
"""GitHub Flavored Markdown; review comments on any line of a hunk; ```suggestion blocks over a line range."""
