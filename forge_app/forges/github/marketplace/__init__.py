"""GitHub Marketplace: the listing webhook, accounts and plans, serving only paying accounts,
reconciliation with the listing, and the Setup URL (README "Listing on GitHub Marketplace")."""

LISTING = "the GitHub Marketplace listing"
"""How serving decisions name the listing in their reasons (`published: false`, the check run)."""
