"""GitHub Marketplace: the listing webhook, accounts and plans, serving only paying accounts,
reconciliation with the listing, and the Setup URL (README "Listing on GitHub Marketplace")."""
