"""GitLab adapter (gitlab.com and self-managed): connections checked against the
instance, `X-Gitlab-Token` webhooks, and merge request review through python-gitlab.

Modules: `http` (blocking REST calls, errors translated), `client` (the ForgeClient),
`positions` (diff note positions), `status` (commit status text), `connection`
(the connection check), `lookup` (which connection serves a project), `events` /
`webhook` (deliveries), `publish` (job handlers) and `forge` (the one description the registry lists).
"""

from __future__ import annotations

from forge_app.core.escape import gfm
from forge_app.core.review.style import Rendering

RENDERING = Rendering(markdown=gfm, hidden_html_comments=True, comments_on_context_lines=False, suggestion="offset")
"""GitLab Flavored Markdown (GFM-compatible escaping); diff notes on added lines; ```suggestion:-0+N."""
