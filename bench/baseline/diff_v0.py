"""Base-vs-head classification: which head findings are new, which base ones are fixed.

Identity is decided here, not by fingerprint equality alone (docs/fingerprints.md):

1. Group by (rule, path, code hash); the base path goes through `renames`. Only
   findings of one group can match, and a group's counts fix how many are new or
   fixed: max(0, heads - bases) and max(0, bases - heads).
2. Inside a group, equal `value`s (same code, same context) pair first.
3. The rest pair for the most context similarity in total (shared neighbour-line
   hashes, the nearest weighing most); ties go to the nearest line once the file's
   line shift, read off the pairs already made, is accounted for.
4. In a run of adjacent identical findings, the surplus (new or fixed) is the last.

Pure and deterministic: the output does not depend on input order.
"""

from __future__ import annotations

import bisect
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from forge_app.core.models import Finding

WEIGHTS = (16, 4, 1)
"""Similarity weight of a shared context line by its distance (1st, 2nd, 3rd nearest).

Steep on purpose: the adjacent line is the best evidence of place; distant ones only
break ties between candidates that agree (or disagree) on the nearest."""

ASSIGN_LIMIT = 60_000
"""Leftover groups with small**2 * large above this skip the optimal assignment
(O(n^2 m)) for a windowed greedy pass: thousands of copies of one line stay fast."""

_SCALE = 1_000_000  # similarity outranks any sum of line distances (capped below) in a cost
_MAX_DIST = 10_000

WINDOW = 8
"""In huge groups, a head finding is only compared with this many base findings on each side of its expected line."""


@dataclass(frozen=True)
class DiffResult:
    new: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    unchanged: list[tuple[Finding, Finding]] = field(default_factory=list)  # (head, base)


def _order(f: Finding) -> tuple:
    return (f.path, f.start_line, f.rule_id, f.start_col or 0, f.end_line, f.end_col or 0, f.key, f.message)


def _group_code(f: Finding) -> str:
    return f.fingerprint.code if f.fingerprint is not None else "key:" + f.key


class _Shifts:
    """Line shift (head line - base line) per head path, read off pairs already made.

    The shift at a base line is that of the nearest pair above it: lines inserted or
    removed between that pair and the finding are exactly what we cannot see yet.
    """

    def __init__(self) -> None:
        self._pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._sorted: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {}

    def add(self, path: str, base_line: int, head_line: int) -> None:
        self._pairs[path].append((base_line, head_line))

    def freeze(self) -> None:
        for path, pairs in self._pairs.items():
            by_base = sorted(pairs)
            by_head = sorted((h, b) for b, h in pairs)
            self._sorted[path] = (
                [b for b, _ in by_base],
                [h - b for b, h in by_base],
                [h for h, _ in by_head],
                [h - b for h, b in by_head],
            )

    @staticmethod
    def _at(keys: list[int], shifts: list[int], line: int) -> int:
        i = bisect.bisect_right(keys, line)
        return shifts[i - 1] if i else shifts[0]

    def at_base(self, path: str, base_line: int) -> int:
        s = self._sorted.get(path)
        return self._at(s[0], s[1], base_line) if s else 0

    def at_head(self, path: str, head_line: int) -> int:
        s = self._sorted.get(path)
        return self._at(s[2], s[3], head_line) if s else 0


class _Ctx:
    """A finding's context, ready for scoring: line hash -> nearest position."""

    __slots__ = ("f", "before", "after")

    def __init__(self, f: Finding) -> None:
        fp = f.fingerprint
        self.f = f
        self.before = _positions(fp.before) if fp else {}
        self.after = _positions(fp.after) if fp else {}


def _positions(hashes: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, h in enumerate(hashes[: len(WEIGHTS)]):
        out.setdefault(h, i)
    return out


def _overlap(a: dict[str, int], b: dict[str, int]) -> int:
    return sum(WEIGHTS[max(i, b[h])] for h, i in a.items() if h in b)


def _similarity(a: _Ctx, b: _Ctx) -> int:
    """Weighted count of context lines both findings have on the same side.

    A shared line weighs by the farther of its two distances: an inserted neighbour
    pushes the others one step away without losing them, while a line that is near
    one finding but far from the other (code that moved around it) counts little.
    """
    return _overlap(a.before, b.before) + _overlap(a.after, b.after)


@dataclass
class _Group:
    """Findings that can match each other: same rule, same (head) path, same code."""

    path: str
    base: list[Finding]  # sorted by _order
    head: list[Finding]
    match: dict[int, int] = field(default_factory=dict)  # head index -> base index

    def pair_exact(self) -> None:
        """Pairs equal values in line order.

        A group of one base and one head pairs whatever the context says: the code is
        the same, so it is the same finding, moved or with edited neighbours.
        """
        if len(self.base) == 1 and len(self.head) == 1:
            self.match[0] = 0
            return
        by_value: dict[str, deque[int]] = defaultdict(deque)
        for bi, b in enumerate(self.base):
            by_value[b.key].append(bi)
        for hi, h in enumerate(self.head):
            q = by_value.get(h.key)
            if q:
                self.match[hi] = q.popleft()

    def leftovers(self) -> tuple[list[int], list[int]]:
        taken = set(self.match.values())
        left_base = [i for i in range(len(self.base)) if i not in taken]
        return left_base, [i for i in range(len(self.head)) if i not in self.match]

    def pair_rest(self, shifts: "_Shifts") -> None:
        """Pairs min(#base, #head) of the leftovers, for the most similarity in total.

        Best total rather than best-first: in a permuted file, one pair can look great
        on borrowed context (the next function's first line) and rob two others.
        """
        left_b, left_h = self.leftovers()
        if not left_b or not left_h:
            return
        base = [self.base[i] for i in left_b]
        head = [self.head[i] for i in left_h]
        lo, hi = sorted((len(base), len(head)))
        if lo * lo * hi <= ASSIGN_LIMIT:
            chosen = _optimal(base, head, self.path, shifts)
        else:
            chosen = _greedy(_candidates_window(base, head, self.path, shifts), len(base), len(head))
        if len(chosen) < min(len(base), len(head)):  # windows ran dry: pair the rest in line order
            taken_b, taken_h = {bi for bi, _ in chosen}, {hi for _, hi in chosen}
            rest_b = [i for i in range(len(base)) if i not in taken_b]
            rest_h = [i for i in range(len(head)) if i not in taken_h]
            chosen.extend(zip(rest_b, rest_h))
        for bi, hi in chosen:
            self.match[left_h[hi]] = left_b[bi]

    def settle_runs(self) -> None:
        """In a run of adjacent identical findings, put the surplus at the end of the run.

        Adjacent copies have each other as context, so which one is "the new one" is
        undecidable; the last of the run is the line `git diff` shows as added.
        """
        if len(self.match) == len(self.head) and len(self.match) == len(self.base):
            return
        for run in _runs(self.head):
            bases = sorted(self.match[i] for i in run if i in self.match)
            if 0 < len(bases) < len(run):
                for i in run:
                    self.match.pop(i, None)
                self.match.update(zip(run, bases))
        inverse = {b: h for h, b in self.match.items()}
        for run in _runs(self.base):
            heads = sorted(inverse[i] for i in run if i in inverse)
            if 0 < len(heads) < len(run):
                for i in run:
                    inverse.pop(i, None)
                inverse.update(zip(run, heads))
        self.match = {h: b for b, h in inverse.items()}


def _runs(findings: list[Finding]) -> list[list[int]]:
    """Indexes of findings (sorted by line) on touching or overlapping lines, runs of two or more."""
    runs: list[list[int]] = []
    cur: list[int] = []
    for i, f in enumerate(findings):
        if cur and f.start_line <= findings[cur[-1]].end_line + 1:
            cur.append(i)
        else:
            if len(cur) > 1:
                runs.append(cur)
            cur = [i]
    if len(cur) > 1:
        runs.append(cur)
    return runs


def _greedy(candidates: list[tuple[tuple, int, int]], nb: int, nh: int) -> list[tuple[int, int]]:
    """Best-first assignment over (sort key, base index, head index) candidates."""
    candidates.sort()
    used_b, used_h = [False] * nb, [False] * nh
    out: list[tuple[int, int]] = []
    for _, bi, hi in candidates:
        if not used_b[bi] and not used_h[hi]:
            used_b[bi] = used_h[hi] = True
            out.append((bi, hi))
    return out


def _optimal(base: list[Finding], head: list[Finding], path: str, shifts: _Shifts) -> list[tuple[int, int]]:
    """The assignment with the highest total similarity; among those, the least total
    distance from the lines the file's shift predicts. Returns (base index, head index)."""
    bc, hc = [_Ctx(b) for b in base], [_Ctx(h) for h in head]
    cost = []
    for b in bc:
        expect = b.f.start_line + shifts.at_base(path, b.f.start_line)
        cost.append([-_similarity(b, h) * _SCALE + min(abs(h.f.start_line - expect), _MAX_DIST) for h in hc])
    if len(bc) <= len(hc):
        return [(bi, hi) for bi, hi in enumerate(_hungarian(cost))]
    transposed = [list(col) for col in zip(*cost)]
    return [(bi, hi) for hi, bi in enumerate(_hungarian(transposed))]


def _hungarian(cost: list[list[int]]) -> list[int]:
    """Minimum-cost assignment of every row to a distinct column (rows <= columns).

    The O(n^2 m) Kuhn-Munkres with potentials; returns the column of each row.
    """
    n, m = len(cost), len(cost[0])
    inf = float("inf")
    u, v = [0] * (n + 1), [0] * (m + 1)
    p, way = [0] * (m + 1), [0] * (m + 1)  # p[j]: row (1-based) assigned to column j
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            row, ui0 = cost[i0 - 1], u[i0]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - ui0 - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    out = [-1] * n
    for j in range(1, m + 1):
        if p[j]:
            out[p[j] - 1] = j - 1
    return out


def _candidates_window(
    base: list[Finding], head: list[Finding], path: str, shifts: _Shifts
) -> list[tuple[tuple, int, int]]:
    """(sort key, base index, head index) for each head and the base findings nearest its
    expected line only: huge groups of identical code stay O(n log n)."""
    order = sorted(range(len(base)), key=lambda i: base[i].start_line)
    lines = [base[i].start_line for i in order]
    bc = {i: _Ctx(base[i]) for i in order}
    out = []
    for hi, hf in enumerate(head):
        h = _Ctx(hf)
        expect = hf.start_line - shifts.at_head(path, hf.start_line)
        mid = bisect.bisect_left(lines, expect)
        for j in range(max(0, mid - WINDOW), min(len(order), mid + WINDOW)):
            bi = order[j]
            out.append(((-_similarity(bc[bi], h), abs(lines[j] - expect), bi, hi), bi, hi))
    return out


def classify(
    base: Sequence[Finding], head: Sequence[Finding], renames: Mapping[str, str] | None = None,
    *, pair_by_place: bool = True,
) -> DiffResult:
    """Classifies head findings as new or unchanged and base findings as fixed.

    `renames` maps old (base) paths to new (head) paths. Findings without a
    fingerprint match on their location key.
    """
    renames = renames or {}
    order = {id(f): _order(f) for f in (*base, *head)}  # computed once: sorting dominates the time

    def by_order(f: Finding) -> tuple:
        return order[id(f)]

    groups: dict[tuple[str, str, str], _Group] = {}
    for side, findings in ((0, base), (1, head)):
        for f in sorted(findings, key=by_order):
            path = renames.get(f.path, f.path) if side == 0 else f.path
            key = (f.rule_id, path, _group_code(f))
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group(path, [], [])
            (g.head if side else g.base).append(f)

    both = [g for g in groups.values() if g.base and g.head]
    shifts = _Shifts()
    for g in both:
        g.pair_exact()
        for hi, bi in g.match.items():
            shifts.add(g.path, g.base[bi].start_line, g.head[hi].start_line)
    shifts.freeze()

    result = DiffResult()
    for g in groups.values():
        if g.base and g.head:
            g.pair_rest(shifts)
            g.settle_runs()
        matched_b = set(g.match.values())
        result.new.extend(h for i, h in enumerate(g.head) if i not in g.match)
        result.fixed.extend(b for i, b in enumerate(g.base) if i not in matched_b)
        result.unchanged.extend((g.head[hi], g.base[bi]) for hi, bi in g.match.items())
    if pair_by_place:
        _pair_by_place(result, renames, shifts)
    result.new.sort(key=by_order)
    result.fixed.sort(key=by_order)
    result.unchanged.sort(key=lambda p: (order[id(p[0])], order[id(p[1])]))
    return result


def _placeless(f: Finding) -> bool:
    return f.fingerprint is not None and f.fingerprint.fallback


def _pair_by_place(result: DiffResult, renames: Mapping[str, str], shifts: _Shifts) -> None:
    """Last pass for findings whose fingerprint was made without the code (no checkout, no
    snippet): their code hash cannot meet the other side's, so a leftover new and a leftover
    fixed finding of the same rule and path are taken to be one finding that kept its place
    (nearest expected line first). Without it, mixing a checkout upload with a snippet-less
    raw report would report every finding as both fixed and new."""
    if not any(_placeless(f) for f in result.new) and not any(_placeless(f) for f in result.fixed):
        return
    leftovers: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for b in result.fixed:
        leftovers[(b.rule_id, renames.get(b.path, b.path))].append(b)
    still_new: list[Finding] = []
    paired: set[int] = set()
    for h in sorted(result.new, key=lambda f: (f.path, f.start_line)):
        candidates = [b for b in leftovers.get((h.rule_id, h.path), ())
                      if id(b) not in paired and (_placeless(h) or _placeless(b))]
        if not candidates:
            still_new.append(h)
            continue
        expect = h.start_line - shifts.at_head(h.path, h.start_line)
        best = min(candidates, key=lambda b: (abs(b.start_line - expect), b.start_line))
        paired.add(id(best))
        result.unchanged.append((h, best))
    result.new[:] = still_new
    result.fixed[:] = [b for b in result.fixed if id(b) not in paired]
