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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from forge_app.core.linemap import LineMap
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


# How findings are sorted: path, line, rule, then the rest of the location, so output is stable.
_OrderKey = tuple[str, int, str, int, int, int, str, str]
# (negated similarity, line distance, base index, head index): smaller pairs first.
_Candidate = tuple[tuple[int, int, int, int], int, int]
# (rule, path, first line, last line), (start col, end col) or None, group code or None.
_Place = tuple[str, str, int, int]
_BucketKey = tuple[_Place, tuple[int | None, int | None] | None, str | None]


def _order(f: Finding) -> _OrderKey:
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

    __slots__ = ("after", "before", "f", "scope")

    def __init__(self, f: Finding) -> None:
        fp = f.fingerprint
        self.f = f
        self.before = _positions(fp.before) if fp else {}
        self.after = _positions(fp.after) if fp else {}
        self.scope = fp.scope if fp else ""


SCOPE_WEIGHT = 4
"""Similarity of sitting under the same header line (`def f():`), as much as a shared second-nearest
line: it tells look-alike places apart (functions that differ only by name, swapped), where the
rest of the context ties or only borrowed lines of the next function differ."""


def _same_scope(a: _Ctx, b: _Ctx) -> int:
    return SCOPE_WEIGHT if a.scope and a.scope == b.scope else 0


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
    return _overlap(a.before, b.before) + _overlap(a.after, b.after) + _same_scope(a, b)


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
        # Same value and same enclosing scope first, then same value: two identical functions
        # that differ only by name, swapped, keep their own findings.
        by_scope: dict[tuple[str, str], deque[int]] = defaultdict(deque)
        for bi, b in enumerate(self.base):
            scope = b.fingerprint.scope if b.fingerprint else ""
            if scope:
                by_scope[(b.key, scope)].append(bi)
        taken: set[int] = set()
        for hi, h in enumerate(self.head):
            scope = h.fingerprint.scope if h.fingerprint else ""
            q = by_scope.get((h.key, scope)) if scope else None
            if q:
                self.match[hi] = bi = q.popleft()
                taken.add(bi)
        # Equal values whose scopes are not known to differ (a snippet has no scope), in line order.
        known: dict[str, deque[int]] = defaultdict(deque)
        unknown: dict[str, deque[int]] = defaultdict(deque)
        for bi, b in enumerate(self.base):
            if bi not in taken:
                (known if b.fingerprint is not None and b.fingerprint.scope else unknown)[b.key].append(bi)
        for hi, h in enumerate(self.head):
            if hi in self.match:
                continue
            qu = unknown.get(h.key)
            qk = None if h.fingerprint is not None and h.fingerprint.scope else known.get(h.key)
            if qu and (not qk or qu[0] < qk[0]):
                self.match[hi] = qu.popleft()
            elif qk:
                self.match[hi] = qk.popleft()

    def leftovers(self) -> tuple[list[int], list[int]]:
        taken = set(self.match.values())
        left_base = [i for i in range(len(self.base)) if i not in taken]
        return left_base, [i for i in range(len(self.head)) if i not in self.match]

    def pair_rest(self, shifts: _Shifts) -> None:
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
            chosen.extend(zip(rest_b, rest_h, strict=False))  # the longer side keeps its surplus
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
                self.match.update(zip(run, bases, strict=False))  # the run's tail stays unmatched
        inverse = {b: h for h, b in self.match.items()}
        for run in _runs(self.base):
            heads = sorted(inverse[i] for i in run if i in inverse)
            if 0 < len(heads) < len(run):
                for i in run:
                    inverse.pop(i, None)
                inverse.update(zip(run, heads, strict=False))
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


def _greedy(candidates: list[_Candidate], nb: int, nh: int) -> list[tuple[int, int]]:
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
    transposed = [list(col) for col in zip(*cost, strict=True)]
    return [(bi, hi) for hi, bi in enumerate(_hungarian(transposed))]


def _hungarian(cost: list[list[int]]) -> list[int]:
    """Minimum-cost assignment of every row to a distinct column (rows <= columns).

    The O(n^2 m) Kuhn-Munkres with potentials; returns the column of each row.
    """
    n, m = len(cost), len(cost[0])
    inf = float("inf")
    u: list[float] = [0] * (n + 1)
    v: list[float] = [0] * (m + 1)
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
) -> list[_Candidate]:
    """(sort key, base index, head index) for each head and the base findings nearest its
    expected line only: huge groups of identical code stay O(n log n)."""
    order = sorted(range(len(base)), key=lambda i: base[i].start_line)
    lines = [base[i].start_line for i in order]
    bc = {i: _Ctx(base[i]) for i in order}
    out: list[_Candidate] = []
    for hi, hf in enumerate(head):
        h = _Ctx(hf)
        expect = hf.start_line - shifts.at_head(path, hf.start_line)
        mid = bisect.bisect_left(lines, expect)
        for j in range(max(0, mid - WINDOW), min(len(order), mid + WINDOW)):
            bi = order[j]
            out.append(((-_similarity(bc[bi], h), abs(lines[j] - expect), bi, hi), bi, hi))
    return out


def _flagged_lines(f: Finding) -> tuple[int, int]:
    """The lines a finding flags; a match ending at column 1 ends on the line before."""
    end = max(f.start_line, f.end_line)
    if end > f.start_line and f.end_col == 1:
        end -= 1
    return f.start_line, end


def _pin(
    base: Sequence[Finding], head: Sequence[Finding], lines: LineMap, by_order: Callable[[Finding], _OrderKey]
) -> tuple[list[tuple[Finding, Finding]], list[Finding], list[Finding]]:
    """Pairs each head finding whose flagged lines the diff leaves untouched with a base
    finding of the same rule at the mapped place: same columns and code first, then same
    columns, then same code, then any, in line order. Returns the pairs and the findings
    left for the fingerprints to decide. Linear: thousands of identical findings on one line
    are dealt from queues, not searched."""
    buckets: dict[_BucketKey, deque[Finding]] = defaultdict(deque)
    for b in sorted(base, key=by_order):
        place: _Place = (b.rule_id, b.path, *_flagged_lines(b))
        cols, code = (b.start_col, b.end_col), _group_code(b)
        for key in ((place, cols, code), (place, cols, None), (place, None, code), (place, None, None)):
            buckets[key].append(b)
    pairs: list[tuple[Finding, Finding]] = []
    rest_head: list[Finding] = []
    taken: set[int] = set()
    for h in sorted(head, key=by_order):
        mapped = lines.base_place(h.path, *_flagged_lines(h))
        best = None
        if mapped is not None:
            place = (h.rule_id, *mapped)
            cols, code = (h.start_col, h.end_col), _group_code(h)
            for key in ((place, cols, code), (place, cols, None), (place, None, code), (place, None, None)):
                q = buckets.get(key)
                while q and id(q[0]) in taken:
                    q.popleft()
                if q:
                    best = q.popleft()
                    break
        if best is None:
            rest_head.append(h)
            continue
        taken.add(id(best))
        pairs.append((h, best))
    return pairs, [b for b in base if id(b) not in taken], rest_head


def classify(
    base: Sequence[Finding], head: Sequence[Finding], renames: Mapping[str, str] | None = None,
    *, pair_by_place: bool = True, lines: LineMap | None = None,
) -> DiffResult:
    """Classifies head findings as new or unchanged and base findings as fixed.

    `renames` maps old (base) paths to new (head) paths. `lines`, the complete diff
    between the two commits when known, decides first: a head finding on lines it
    leaves untouched is the base finding at the mapped place. Findings without a
    fingerprint match on their location key.
    """
    renames = renames or {}
    order = {id(f): _order(f) for f in (*base, *head)}  # computed once: sorting dominates the time
    pinned: list[tuple[Finding, Finding]] = []
    if lines is not None:
        renames = {**lines.renames, **renames}
        pinned, base, head = _pin(base, head, lines, lambda f: order[id(f)])

    def by_order(f: Finding) -> _OrderKey:
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
    for h, b in pinned:
        shifts.add(h.path, b.start_line, h.start_line)
    for g in both:
        g.pair_exact()
        for hi, bi in g.match.items():
            shifts.add(g.path, g.base[bi].start_line, g.head[hi].start_line)
    shifts.freeze()

    result = DiffResult(unchanged=pinned)
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


class _Nearest:
    """Findings of one file sorted by line, taken one at a time nearest a given line: the
    next alive one on either side is found through path-compressed skip pointers, so n
    takes cost O(n log n) (a quadratic scan took 36 s for 20,000 findings in one file)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.items = sorted(findings, key=lambda f: f.start_line)  # stable: ties keep their order
        self.lines = [f.start_line for f in self.items]
        n = len(self.items)
        self._right = list(range(n + 1))  # next alive index >= i (n: none)
        self._left = list(range(n + 1))  # 1 + previous alive index <= i - 1 (0: none)
        self.index = {id(f): i for i, f in enumerate(self.items)}

    @staticmethod
    def _find(parent: list[int], i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def remove(self, f: Finding) -> None:
        i = self.index.get(id(f))
        if i is not None:
            self._right[i] = i + 1
            self._left[i + 1] = i

    def nearest(self, expect: int) -> Finding | None:
        """The alive finding nearest `expect`; on a tie the lower line, then the first listed."""
        i = bisect.bisect_left(self.lines, expect)
        r = self._find(self._right, i)
        left = self._find(self._left, i) - 1
        if left >= 0:  # the first alive one of that line: ties keep their order
            left = self._find(self._right, bisect.bisect_left(self.lines, self.lines[left]))
        if r >= len(self.items) and left < 0:
            return None
        if r >= len(self.items) or (left >= 0 and expect - self.lines[left] <= self.lines[r] - expect):
            return self.items[left]
        return self.items[r]


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
    every = {key: _Nearest(bs) for key, bs in leftovers.items()}
    placeless = {key: _Nearest([b for b in bs if _placeless(b)]) for key, bs in leftovers.items()}
    still_new: list[Finding] = []
    paired: set[int] = set()
    for h in sorted(result.new, key=lambda f: (f.path, f.start_line)):
        key = (h.rule_id, h.path)
        pool = (every if _placeless(h) else placeless).get(key)
        expect = h.start_line - shifts.at_head(h.path, h.start_line)
        best = pool.nearest(expect) if pool is not None else None
        if best is None:
            still_new.append(h)
            continue
        every[key].remove(best)
        placeless[key].remove(best)
        paired.add(id(best))
        result.unchanged.append((h, best))
    result.new[:] = still_new
    result.fixed[:] = [b for b in result.fixed if id(b) not in paired]
