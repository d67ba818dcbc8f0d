"""A small deterministic all-pairs (pairwise) generator with constraints.

Every pair of levels of every two factors that some allowed combination
can hold appears in at least one generated row. Greedy, in the style of
AETG: each new row is built level by level to cover as many uncovered
pairs as possible; ties are broken by a seeded random generator, so the
rows are the same on every run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Row = dict[str, Any]


def _pairs(factors: Mapping[str, Sequence[Any]]) -> list[tuple[str, int, str, int]]:
    names = list(factors)
    return [(a, i, b, j) for a, b in itertools.combinations(names, 2)
            for i in range(len(factors[a])) for j in range(len(factors[b]))]


def _row(factors: Mapping[str, Sequence[Any]], index: Mapping[str, int]) -> Row:
    return {name: factors[name][index[name]] for name in factors if name in index}


def feasible_pairs(factors: Mapping[str, Sequence[Any]], allowed: Callable[[Row], bool]
                   ) -> set[tuple[str, int, str, int]]:
    """The pairs that at least one full allowed combination holds."""
    names = list(factors)
    found: set[tuple[str, int, str, int]] = set()
    for combo in itertools.product(*(range(len(factors[n])) for n in names)):
        index = dict(zip(names, combo))
        if allowed(_row(factors, index)):
            found.update((a, index[a], b, index[b]) for a, b in itertools.combinations(names, 2))
    return found


def covered_pairs(factors: Mapping[str, Sequence[Any]], rows: Sequence[Row]) -> set[tuple[str, int, str, int]]:
    names = list(factors)
    out: set[tuple[str, int, str, int]] = set()
    for row in rows:
        index = {n: list(factors[n]).index(row[n]) for n in names}
        out.update((a, index[a], b, index[b]) for a, b in itertools.combinations(names, 2))
    return out


def all_pairs(factors: Mapping[str, Sequence[Any]], allowed: Callable[[Row], bool], seed: int = 0,
              candidates: int = 30) -> list[Row]:
    """Rows (dicts factor -> level), all allowed, covering every feasible pair."""
    names = list(factors)
    uncovered = feasible_pairs(factors, allowed)
    rng = random.Random(seed)
    rows: list[Row] = []
    while uncovered:
        best: tuple[int, dict[str, int]] | None = None
        for _ in range(candidates):
            # Start from an uncovered pair, then add the other factors one by
            # one, each with the level covering the most uncovered pairs.
            a, i, b, j = sorted(uncovered)[rng.randrange(len(uncovered))]
            index = {a: i, b: j}
            order = [n for n in names if n not in index]
            rng.shuffle(order)
            for name in order:
                levels = list(range(len(factors[name])))
                rng.shuffle(levels)
                scored = []
                for level in levels:
                    gain = sum((x, index[x], name, level) in uncovered or (name, level, x, index[x]) in uncovered
                               for x in index)
                    scored.append((gain, level))
                for _gain, level in sorted(scored, key=lambda s: -s[0]):
                    trial = {**index, name: level}
                    if _completable(factors, trial, allowed):
                        index = trial
                        break
                else:
                    index = {}
                    break
            if len(index) != len(names) or not allowed(_row(factors, index)):
                continue
            gain = sum((x, index[x], y, index[y]) in uncovered for x, y in itertools.combinations(names, 2))
            if best is None or gain > best[0]:
                best = (gain, index)
        if best is None or best[0] == 0:
            raise RuntimeError("pairwise generation stalled")
        index = best[1]
        rows.append(_row(factors, index))
        uncovered -= {(x, index[x], y, index[y]) for x, y in itertools.combinations(names, 2)}
    return rows


def _completable(factors: Mapping[str, Sequence[Any]], partial: dict[str, int],
                 allowed: Callable[[Row], bool]) -> bool:
    """Whether some allowed full combination extends ``partial``."""
    rest = [n for n in factors if n not in partial]
    for combo in itertools.product(*(range(len(factors[n])) for n in rest)):
        if allowed(_row(factors, {**partial, **dict(zip(rest, combo))})):
            return True
    return False
