"""The one Retry-After reader: delta-seconds, HTTP-dates, garbage, negatives, huge values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from forge_app.core.retry_after import DEFAULT_MAXIMUM, parse_retry_after

NOW = 1_700_000_000.0


@given(st.integers(min_value=0, max_value=10**6))
def test_delta_seconds_are_read_as_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == min(float(seconds), DEFAULT_MAXIMUM)
    assert parse_retry_after(f"  {seconds}\t", NOW) == min(float(seconds), DEFAULT_MAXIMUM)


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_http_dates_are_read_relative_to_now(offset: int) -> None:
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset)
    waited = parse_retry_after(format_datetime(when, usegmt=True), NOW)
    assert waited == max(0.0, min(float(offset), DEFAULT_MAXIMUM))  # a date in the past: no wait


def test_the_rfc_example_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412430) == 50


@given(st.integers(min_value=1, max_value=10**9))
def test_negative_numbers_are_no_advice(n: int) -> None:
    assert parse_retry_after(f"-{n}", NOW) is None


@given(st.text())
def test_garbage_is_no_advice_or_a_bounded_wait(value: str) -> None:
    waited = parse_retry_after(value, NOW, minimum=1.0, maximum=3600.0)
    assert waited is None or (math.isfinite(waited) and 1.0 <= waited <= 3600.0)


@given(st.integers(min_value=16, max_value=2000))
def test_huge_numbers_are_capped_never_infinite(digits: int) -> None:
    assert parse_retry_after("9" * digits, NOW) == DEFAULT_MAXIMUM
    assert parse_retry_after("9" * digits, NOW, maximum=600.0) == 600.0


@given(st.floats(min_value=0, max_value=10**6, allow_nan=False), st.floats(min_value=0, max_value=10**6))
def test_bounds_hold(minimum: float, span: float) -> None:
    for value in ("0", "1", "86400000", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"):
        waited = parse_retry_after(value, NOW, minimum=minimum, maximum=minimum + span)
        assert waited is not None and minimum <= waited <= minimum + span


def test_absent_and_unreadable() -> None:
    for value in (None, "", "soon", "1.5", "١٢", "Wed, 99 Foo 2015 07:28:00 GMT", "0x10"):
        assert parse_retry_after(value, NOW) is None, value
