"""forge-app on Bitbucket Cloud, with workspace or repository access tokens.

- `http`: one authenticated httpx session (pagination, redirects that keep the token
  only on the API's own origin, errors mapped to job outcomes);
- `connection`: checking a token against the workspace or repository it is for, and
  finding the connection that covers a repository;
- `webhook` / `events`: signed, de-duplicated deliveries, processed as jobs;
- `commits`: 12-character payload hashes resolved to full SHAs;
- `insights`: the Code Insights report and its annotations;
- `client`: the ForgeClient the generic publish flow drives;
- `publish`: the `publish_scan` publisher;
- `forge`: the one description of Bitbucket the registry lists.
"""

from __future__ import annotations

from forge_app.core.escape import python_markdown
from forge_app.core.review.style import Rendering

FORGE = "bitbucket"
STATUS_KEY = "forge-app"
REPORT_ID = "forge-app"


RENDERING = Rendering(markdown=python_markdown, hidden_html_comments=False, comments_on_context_lines=False,
                      suggestion=None, fix_as_diff=True)
"""Python-Markdown with raw HTML escaped (so markers are link reference definitions); inline comments on
added lines; no suggestion syntax, so a fix is shown as a -/+ diff."""
