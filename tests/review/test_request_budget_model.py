"""The request budget's arithmetic (forges/flow.py), apart from any forge."""

from __future__ import annotations

from dataclasses import dataclass

from forge_app.forges.flow import inline_limit, request_budget


@dataclass
class Costs:
    per_request: int  # comments one request posts (GitHub: 50 in a review, plus a listing)
    pair: bool = False

    def comment_requests(self, count: int) -> int:
        batches = -(-count // self.per_request)
        return batches * (2 if self.pair else 1)


def test_the_budget_is_6_plus_one_per_50_new_findings() -> None:
    assert [request_budget(n) for n in (0, 1, 50, 51, 1000)] == [6, 7, 7, 8, 26]


def test_one_request_per_comment_gets_what_is_left_after_the_fixed_requests_and_the_summary() -> None:
    gitlab = Costs(1)
    # 10 findings in the diff, budget 7: 2 to open, 1 to close, 1 summary (some are left out) -> 3
    assert inline_limit(gitlab, budget=7, spent=2, closing=1, planned=10, max_inline=50, summary_needed=False) == 3
    # everything fits without a summary: no request is kept for it
    assert inline_limit(gitlab, budget=7, spent=2, closing=1, planned=4, max_inline=50, summary_needed=False) == 4
    # ... unless something outside the diff needs the summary anyway
    assert inline_limit(gitlab, budget=7, spent=2, closing=1, planned=4, max_inline=50, summary_needed=True) == 3
    # FORGE_APP_MAX_INLINE_COMMENTS still caps, and nothing fits when the fixed requests take it all
    assert inline_limit(gitlab, budget=26, spent=2, closing=1, planned=1000, max_inline=5,
                        summary_needed=False) == 5
    assert inline_limit(gitlab, budget=7, spent=2, closing=4, planned=10, max_inline=50, summary_needed=False) == 0


def test_batched_comments_are_bounded_by_the_cap_not_the_budget() -> None:
    github = Costs(50, pair=True)
    assert inline_limit(github, budget=26, spent=2, closing=20, planned=1000, max_inline=50,
                        summary_needed=True) == 50
    assert inline_limit(github, budget=26, spent=2, closing=22, planned=1000, max_inline=50,
                        summary_needed=True) == 0  # not even one review fits
