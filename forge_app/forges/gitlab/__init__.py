"""GitLab adapter (gitlab.com and self-managed): connections checked against the
instance, `X-Gitlab-Token` webhooks, and merge request review through python-gitlab.

Modules: `api` (blocking REST calls, errors translated), `client` (the ForgeClient),
`positions` (diff note positions), `status` (commit status text), `connection`
(the connection check), `lookup` (which connection serves a project), `events` /
`webhook` (deliveries) and `publish` (job handlers, registered at import).
"""
