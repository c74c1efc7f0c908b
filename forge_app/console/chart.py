"""A small server-rendered SVG line chart of open findings over time. Pure, no JS."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_X, PAD_Y = 640, 180, 48, 24


def open_findings_svg(points: Sequence[tuple[str, int]]) -> str:
    """`points` are (label, open findings), oldest first; an accessible `<svg role="img">`."""
    if not points:
        return ""
    values = [v for _, v in points]
    top = max(max(values), 1)
    n = len(points)
    span_x = WIDTH - 2 * PAD_X
    span_y = HEIGHT - 2 * PAD_Y

    def xy(i: int, v: int) -> tuple[float, float]:
        x = PAD_X + (span_x * i / (n - 1) if n > 1 else span_x / 2)
        return round(x, 1), round(HEIGHT - PAD_Y - span_y * v / top, 1)

    coords = [xy(i, v) for i, v in enumerate(values)]
    line = " ".join(f"{x},{y}" for x, y in coords)
    first, last = points[0], points[-1]
    summary = (f"Open findings over the last {n} scan{'s' if n != 1 else ''} of the branch: "
               f"{first[1]} on {first[0]}, {last[1]} on {last[0]}, at most {top}.")
    dots = "".join(
        f'<circle cx="{x}" cy="{y}" r="3"><title>{escape(label)}: {v} open</title></circle>'
        for (x, y), (label, v) in zip(coords, points, strict=True))
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(summary)}</title>'
        f'<line class="axis" x1="{PAD_X}" y1="{HEIGHT - PAD_Y}" x2="{WIDTH - PAD_X}" y2="{HEIGHT - PAD_Y}"/>'
        f'<line class="axis" x1="{PAD_X}" y1="{PAD_Y}" x2="{PAD_X}" y2="{HEIGHT - PAD_Y}"/>'
        f'<text x="{PAD_X - 6}" y="{PAD_Y + 4}" text-anchor="end">{top}</text>'
        f'<text x="{PAD_X - 6}" y="{HEIGHT - PAD_Y + 4}" text-anchor="end">0</text>'
        f'<text x="{PAD_X}" y="{HEIGHT - 6}">{escape(first[0][:10])}</text>'
        f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 6}" text-anchor="end">{escape(last[0][:10])}</text>'
        f'<polyline class="series" fill="none" points="{line}"/>{dots}</svg>'
    )
