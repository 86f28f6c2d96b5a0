"""The Fellegi-Sunter model: u from random pairs, m and the prior by EM, no labels needed.

Training never sees a pair's records, only its comparison levels: candidate pairs are reduced
to distinct level patterns with counts, so EM runs on thousands of patterns, not millions of
pairs. As in Splink, EM runs once per blocking rule on that rule's pairs, with the comparisons
the rule blocked on switched off (within a block they agree by construction); each
comparison's m is the average over the sessions that estimated it, weighted by their expected
matches. Pairs stewards confirmed (must-link) count as known matches in every session.

The model is a JSON-serialisable dict (see :func:`new_model`), saved in the workspace and
reused by later runs until retrained on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from migrate.errors import ConfigError
from rules.match.comparisons import KINDS
from rules.match.features import Columns
from rules.match.settings import MatchSettings

MODEL_FORMAT = "crm-migrate/match-model"
MODEL_VERSION = 1
#: Frequent values kept in the model per term-frequency comparison (used by runs with a saved model and explain).
TF_TABLE_SIZE = 5_000
_M_FLOOR = 1e-6


def pack(gammas: dict[str, np.ndarray]) -> np.ndarray:
    """Each pair's gammas packed into one int64, four bits per comparison (gamma + 1)."""
    packed = np.zeros(len(next(iter(gammas.values()))), dtype=np.int64)
    for i, g in enumerate(gammas.values()):
        packed |= (g.astype(np.int64) + 1) << (4 * i)
    return packed


@dataclass
class Patterns:
    """Distinct gamma patterns and how many pairs have each.

    A pattern is an int64 made by :func:`pack`, so counting millions of pairs is one integer
    ``np.unique``; :attr:`gammas` unpacks the distinct ones.
    """

    n_comparisons: int = 0
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def count(self, packed: np.ndarray) -> None:
        """Add packed patterns (:func:`pack`) to the counts."""
        codes, counts = np.unique(packed, return_counts=True)
        self.merge(Patterns(self.n_comparisons, codes, counts))

    def merge(self, other: Patterns) -> None:
        """Add another set of counts to this one."""
        self.n_comparisons = max(self.n_comparisons, other.n_comparisons)
        codes, inverse = np.unique(np.r_[self.codes, other.codes], return_inverse=True)
        self.counts = np.bincount(inverse, weights=np.r_[self.counts, other.counts]).astype(np.int64)
        self.codes = codes

    @property
    def gammas(self) -> np.ndarray:
        """The distinct patterns as rows of gammas (one column per comparison)."""
        shifts = 4 * np.arange(self.n_comparisons, dtype=np.int64)
        return (((self.codes[:, None] >> shifts) & 0xF) - 1).astype(np.int8)

    @property
    def total(self) -> int:
        """How many pairs were counted."""
        return int(self.counts.sum())


def level_counts(patterns: Patterns, index: int, n_levels: int) -> np.ndarray:
    """How many counted pairs fell on each level of one comparison (missing excluded)."""
    if not patterns.total:
        return np.zeros(n_levels)
    column = patterns.gammas[:, index]
    present = column >= 0
    return np.bincount(column[present], weights=patterns.counts[present], minlength=n_levels)


def new_model(settings: MatchSettings) -> dict:
    """An untrained model: the comparisons and their levels, no parameters yet."""
    return {
        "format": MODEL_FORMAT, "version": MODEL_VERSION,
        "settings": settings.model_dump(mode="json"),
        "prior": None,
        "comparisons": {c.id: {"name": c.name, "kind": c.kind, "levels": KINDS[c.kind].levels(c), "m": None, "u": None}
                        for c in settings.comparisons()},
        "tf": {},
        "training": {},
    }


def with_settings(model: dict, settings: MatchSettings) -> dict:
    """A saved model under the current settings; its comparisons must be the ones it was trained on."""
    if model.get("format") != MODEL_FORMAT:
        raise ConfigError("match model: not a crm-migrate match model; retrain it")
    current = settings.model_dump(mode="json")
    if model["settings"]["compare"] != current["compare"]:
        raise ConfigError("rules.match.compare: differs from the comparisons the saved model was trained on; "
                          "retrain the model")
    return {**model, "settings": current}


def estimate_u(patterns: Patterns, model: dict) -> None:
    """Set u from the level counts of random pairs (nearly all non-matches).

    A level no random pair reached gets half a pair, so its weight stays finite.
    """
    for i, params in enumerate(model["comparisons"].values()):
        counts = level_counts(patterns, i, len(params["levels"])) + 0.5
        params["u"] = (counts / counts.sum()).tolist()


def expectation_maximisation(patterns: Patterns, u: list[np.ndarray], m: list[np.ndarray], active: np.ndarray,
                             labelled: Patterns, max_iterations: int, tolerance: float = 1e-5,
                             estimate_m: bool = True) -> tuple[list[np.ndarray], float, int]:
    """EM for m and the match share among these pairs, u fixed (m too unless ``estimate_m``).

    Returns the m of each comparison (only active ones change), the share of matches among the
    pairs, and the iterations run.
    """
    g, counts = patterns.gammas, patterns.counts.astype(np.float64)
    share = 0.3
    m = [x.copy() for x in m]
    for iteration in range(1, max_iterations + 1):
        log_ratio = np.full(len(counts), np.log(share / (1 - share)))
        for c in np.flatnonzero(active):
            present = g[:, c] >= 0
            log_ratio[present] += np.log(m[c][g[present, c]]) - np.log(u[c][g[present, c]])
        responsibility = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -700, 700)))
        weight = counts * responsibility
        new_share = float(np.clip(weight.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_share - share)
        for c in np.flatnonzero(active) if estimate_m else ():
            present = g[:, c] >= 0
            expected = np.bincount(g[present, c], weights=weight[present], minlength=len(m[c]))
            expected = expected + level_counts(labelled, c, len(m[c]))
            if expected.sum() <= 0:
                continue
            new = np.maximum(expected / expected.sum(), _M_FLOOR)
            new /= new.sum()
            change = max(change, float(np.abs(new - m[c]).max()))
            m[c] = new
        share = new_share
        if change < tolerance:
            break
    return m, share, iteration


def train(model: dict, sessions: list[tuple[str, Patterns, np.ndarray]], candidates: Patterns,
          labelled: Patterns, possible_pairs: int, max_iterations: int) -> None:
    """Estimate m by EM over the blocking-rule sessions, then the prior (u must be set).

    Args:
        model: The model to fill in; its u must already be estimated.
        sessions: Per blocking rule: its name, the level patterns of every pair it blocks
            together, and which comparisons are active (not blocked on by that rule).
        candidates: Patterns of the distinct candidate pairs (each counted once).
        labelled: Patterns of pairs stewards confirmed as matches.
        possible_pairs: All pairs the data could form, for the prior of two random records.
        max_iterations: Cap on EM iterations per session.
    """
    params = list(model["comparisons"].values())
    u = [np.asarray(p["u"]) for p in params]
    start = [_initial_m(len(p["levels"])) for p in params]
    total_m = [np.zeros(len(p["levels"])) for p in params]
    total_weight = np.zeros(len(params))
    report = []
    for name, patterns, active in sessions:
        if patterns.total == 0 or not active.any():
            continue
        m, share, iterations = expectation_maximisation(patterns, u, start, active, labelled, max_iterations)
        for c in np.flatnonzero(active):
            total_m[c] += share * patterns.total * m[c]
            total_weight[c] += share * patterns.total
        report.append({"rule": name, "pairs": patterns.total, "match_share": share, "iterations": iterations})
    everything = np.ones(len(params), dtype=bool)
    missing = total_weight == 0
    if missing.any():
        # Comparisons every rule blocks on: estimate them once on all candidates together.
        m = expectation_maximisation(candidates, u, start, everything, labelled, max_iterations)[0] \
            if candidates.total else start
        for c in np.flatnonzero(missing):
            total_m[c], total_weight[c] = m[c], 1.0
    m = [tm / w for tm, w in zip(total_m, total_weight)]
    for p, values in zip(params, m):
        p["m"] = values.tolist()
    # The prior: the share of matches among the distinct candidates, by EM with m and u fixed,
    # spread over every pair the data could form (matches outside the blocks are few).
    share = expectation_maximisation(candidates, u, m, everything, labelled, max_iterations,
                                     estimate_m=False)[1] if candidates.total else 0.0
    model["prior"] = float(np.clip(share * candidates.total / max(possible_pairs, 1), 1e-12, 0.5))
    model["training"] = {"sessions": report, "candidate_pairs": candidates.total, "candidate_match_share": share,
                         "labelled_pairs": labelled.total, "possible_pairs": possible_pairs}


def tf_tables(cols: Columns, settings: MatchSettings) -> dict[str, dict]:
    """Term frequencies of the most frequent values, kept in the model to explain single pairs."""
    tables = {}
    for c in settings.comparisons():
        kind = KINDS[c.kind]
        if c.tf and kind.tf_feature:
            values, counts = kind.tf_values(cols, c).value_counts()
            total = max(int(counts.sum()), 1)
            top = np.argsort(-counts, kind="stable")[:TF_TABLE_SIZE]
            top = top[counts[top] > 1]
            names = values.take(pa.array(top)).to_pylist()
            tables[c.id] = {"values": dict(zip(names, (counts[top] / total).tolist())), "default": 1.0 / total}
    return tables


def _initial_m(n_levels: int) -> np.ndarray:
    """Start EM believing matches mostly agree closely."""
    m = 4.0 ** np.arange(n_levels)
    return m / m.sum()
