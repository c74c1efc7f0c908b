"""Escaping untrusted text for each syntax forge-app writes in (docs/safe-rendering.md).

Text from a report or a webhook (rule ids, paths, messages, URLs) is written by whoever
controls the scanned code or the CI job. One module per target syntax says how such text
is made inert there: `gfm` (GFM-style markdown, check-run summaries),
`python_markdown` (Python-Markdown with raw HTML escaped), `plain` (check-run annotations, Code Insights,
commit statuses), `mrkdwn` (Slack), `html` (email). `urls.safe_url` is the one gate for
links: only http and https.
"""
