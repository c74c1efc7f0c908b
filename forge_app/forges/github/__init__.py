"""forge-app as a GitHub App.

- `manifest` / `registration`: registering the app from `app.yml` (GitHub's manifest flow);
- `credentials`: the app id, key and webhook secret (environment first, then storage);
- `api` / `tokens`: gidgethub calls as the app (JWT) or as one installation (cached token);
- `webhook` / `events`: verified, de-duplicated deliveries, processed as jobs;
- `client` / `checks`: the ForgeClient the generic publish flow drives;
- `publish`: the `publish_scan` publisher and the extra job handlers, registered on import.
"""

CHECK_NAME = "forge-app"

from forge_app.core.escape import gfm
from forge_app.core.review.style import Rendering

RENDERING = Rendering(markdown=gfm, hidden_html_comments=True, comments_on_context_lines=True, suggestion="range")
"""GitHub Flavored Markdown; review comments on any line of a hunk; ```suggestion blocks over a line range."""
