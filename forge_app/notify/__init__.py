"""Notifications: forwarding what is new after each scan to webhooks, Slack and email.

- `fanout`: the `notify_scan` job; decides with `rules`, claims the once-only ledger
  and queues deliveries in one transaction (storage.integrations).
- `delivery`: the `deliver_notification` job and the test button: compose, send, record.
- `payloads` (Semgrep's webhook shapes), `slack`, `mail`: what is sent; pure builders.
- `signing` (Standard Webhooks), `sender` (HTTP with limits), `ssrf`, `retry`: how.
- `validation`: the admin API's input rules.
"""
