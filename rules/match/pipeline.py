"""The match stage: block → compare → score → cluster, with bounded memory and progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rules.match import blocking, graph, memory
from rules.match.features import Columns
from rules.match.model import Patterns, estimate_u, new_model, pack, tf_tables, train, with_settings
from rules.match.scoring import (TIER_GUARD, TIERS, Prepared, compare_partition, matching_columns, pair_columns,
                                 prepare, score_partition, tier_names, weigh, weighing_columns)
from rules.match.settings import FIELD_ALIASES, MatchSettings

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: called as a long stage advances (total None when unknown)."""

#: Candidate pairs whose gammas training keeps for scoring (about 20 bytes each).
_STORED_PAIRS_LIMIT = 20_000_000

#: Tiers of pairs stewards decided.
TIER_MUST_LINK, TIER_CANNOT_LINK = "must_link", "cannot_link"

Scored = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]
"""A chunk of scored pairs: left and right record positions, and :func:`rules.match.scoring.weigh`'s columns."""


@dataclass
class MatchResult:
    """What the match stage produces.

    Attributes:
        pairs: Scored pairs at or above the review threshold (plus steward decisions):
            ``record_key_l``, ``record_key_r``, ``match_weight``, ``match_probability``,
            ``match_tier`` and one ``gamma_<comparison>`` column per comparison.
        clusters: Every record with its ``cluster_id`` (the smallest record key in the cluster).
        review_pairs: Pairs between the review and the link threshold, for stewards.
        oversized: Cluster ids above ``max_cluster_size``: not to be merged automatically, but reviewed.
        model: The trained model (JSON-serialisable), to save and reuse.
        stats: Seconds per stage, pairs scored, blocking figures and warnings.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    review_pairs: pd.DataFrame
    oversized: list[str]
    model: dict
    stats: dict = field(default_factory=dict)


def link(records: pd.DataFrame, settings: MatchSettings, *, model: dict | None = None,
         must_link: pd.DataFrame | None = None, cannot_link: pd.DataFrame | None = None,
         progress: Progress | None = None) -> MatchResult:
    """Find the records that are the same customer.

    Args:
        records: Standardised canonical records (``record_key`` unique).
        settings: The ``rules.match`` settings.
        model: A model saved by an earlier run; None trains a new one on these records.
        must_link: Steward decisions ``(record_key_l, record_key_r)`` that must link.
        cannot_link: Steward decisions that must not link, whatever the scores say.
        progress: Called with ``(stage, done, total)`` as long stages advance.

    Example:
        >>> from bench.synthetic import generate
        >>> s = MatchSettings.model_validate({"blocking": [["last_name"], ["email"]],
        ...     "compare": {"first_name": "name", "last_name": "name", "email": "email"}})
        >>> result = link(generate(300, seed=3), s)
        >>> sorted(result.clusters.columns), 0 < result.model["prior"] < 1
        (['cluster_id', 'record_key'], True)
    """
    report = progress or (lambda stage, done, total: None)
    stats: dict = {"seconds": {}, "warnings": []}
    with _stage(stats, "block"):
        cols = Columns(records)
        # A saved model brings the term frequencies it was trained with: a small delta
        # (a sync, a few records) would otherwise call every value it holds common.
        prepared = prepare(cols, settings, tf_tables=model["tf"] if model is not None else None)
        memory.release()  # what the normalisations freed, before the counts and the blocking keys
        frequent = tf_tables(cols, settings) if model is None else {}
        terms = blocking.rule_terms(cols, settings)
        # The factorised fields and their text are no longer needed: freed before the plans peak.
        del cols
        memory.release()
        plans = blocking.plan_terms(terms, settings)
        sources = blocking.source_codes(records, settings)
        del terms
        memory.release()
    stats["blocking"] = [{"rule": p.name, "pairs": p.pairs, "largest_block": p.largest_block,
                          "oversized_blocks": p.oversized_blocks, "skipped_pairs": p.skipped_pairs} for p in plans]
    stats["warnings"] += [f"blocking rule {p.name!r}: {p.oversized_blocks} block(s) above max_block_size="
                          f"{settings.max_block_size} skipped ({p.skipped_pairs:,} pairs)"
                          for p in plans if p.oversized_blocks]
    must, cannot = _pair_indices(records["record_key"], must_link, cannot_link)

    # Candidate gammas computed for training are kept for scoring when they fit the budget,
    # so each pair is compared once; beyond it scoring compares again, chunk by chunk.
    store = [] if model is None and sum(p.pairs for p in plans) <= _STORED_PAIRS_LIMIT else None
    if model is None:
        with _stage(stats, "train"):
            model = _train(prepared, plans, sources, settings, must, report, store)
            model["tf"] = frequent
    else:
        model = with_settings(model, settings)

    with _stage(stats, "score"):
        decided = _decided(prepared, model, must, cannot)
        if store is not None:
            # Weighing the kept gammas reads term frequencies and strong identifiers only.
            prepared, plans = prepared.select(weighing_columns(prepared)), []
            memory.release()
        chunks = _stored_chunks(prepared, store, model, report) if store is not None else \
            _scored_chunks(prepared, plans, sources, settings, model, report)
        pairs, at, forbidden, stats["pairs_scored"] = _kept(chunks, settings.thresholds.review, cannot)
        pairs, at = _apply_decisions(pairs, at, decided, must, cannot)
        keys = prepared.record_key
        pairs.insert(0, "record_key_r", keys.take(at[:, 1]))
        pairs.insert(0, "record_key_l", keys.take(at[:, 0]))
        del prepared, plans, store, chunks  # clustering needs positions only: free the features first
        memory.release()

    with _stage(stats, "cluster"):
        probability = pairs["match_probability"].to_numpy()
        linked = probability >= settings.thresholds.link
        labels, ids = graph.constrained_clusters(keys, at[linked, 0], at[linked, 1],
                                                 probability[linked], forbidden[:, 0], forbidden[:, 1])
        clusters = pd.DataFrame({"record_key": keys, "cluster_id": ids}, copy=False)
        oversized = graph.oversized(labels, ids, settings.max_cluster_size)
        review = pairs[(probability >= settings.thresholds.review) & ~linked].reset_index(drop=True)
        report("cluster", len(records), len(records))
    return MatchResult(pairs, clusters, review, oversized, model, stats)


def _train(prepared: Prepared, plans: list[blocking.RulePlan], sources: np.ndarray | None,
           settings: MatchSettings, must: np.ndarray, report: Progress, store: list | None) -> dict:
    """u from random pairs, then m and the prior by EM on every rule's candidate pairs.

    With ``store`` (a list), each candidate chunk's ``(left, right, gammas)`` is appended to it,
    and each rule's order is dropped from ``plans`` once its pairs are compared (scoring reads the store).
    """
    model = new_model(settings)
    comparisons = settings.comparisons()
    # Pair frames inside the stage leave the record keys out: only kept pairs need them.
    columns = matching_columns(prepared)
    # The random pairs for u and the candidate pairs are compared on both cores at once: the
    # work is NumPy, Arrow and rapidfuzz, which release the GIL.
    with ThreadPoolExecutor(1) as pool:
        random_pairs = pool.submit(_random_pair_patterns, prepared, settings, sources, columns)

        # A rule's EM session sees every pair the rule blocks together, also those an earlier rule
        # produced first: the pairs a rule adds on its own are biased (e.g. none of a postcode rule's
        # new pairs agree on last name when a last-name rule came first).
        rules = settings.blocking_rules()
        patterns = [Patterns(len(comparisons)) for _ in rules]
        candidates = Patterns(len(comparisons))
        for j in range(len(rules)):
            for left, right in _chunks(plans, j, sources, settings, report, "train: compare candidate pairs"):
                gammas = compare_partition(pair_columns(prepared, left, right, columns), comparisons)
                packed = pack(gammas)
                candidates.count(packed)
                patterns[j].count(packed)
                for i in range(j + 1, len(rules)):
                    key = plans[i].keys[left]
                    also = (key == plans[i].keys[right]) & (key != 0)
                    if also.any():
                        patterns[i].count(packed[also])
                if store is not None:
                    store.append((left, right, gammas))
                memory.release()  # a chunk's pair columns and text, freed, would otherwise add up
            if store is not None:
                plans[j] = plans[j].compared()
        estimate_u(random_pairs.result(), model)
    sessions = []
    for plan, rule, counted in zip(plans, rules, patterns):
        blocked = {FIELD_ALIASES.get(t.field, t.field) for t in rule}
        sessions.append((plan.name, counted, np.array([c.field not in blocked for c in comparisons])))
    labelled = Patterns(len(comparisons))
    if len(must):
        labelled.count(pack(compare_partition(pair_columns(prepared, must[:, 0], must[:, 1], columns), comparisons)))
    train(model, sessions, candidates, labelled, _possible_pairs(len(prepared), sources), settings.em_max_iterations)
    return model


def _scored_chunks(prepared: Prepared, plans: list[blocking.RulePlan], sources: np.ndarray | None,
                   settings: MatchSettings, model: dict, report: Progress) -> Iterator[Scored]:
    """Every candidate pair scored, chunk by chunk (as :func:`score_partition`, without a frame)."""
    columns = matching_columns(prepared)
    comparisons = settings.comparisons()
    for i in range(len(plans)):
        for left, right in _chunks(plans, i, sources, settings, report, "score"):
            pairs = pair_columns(prepared, left, right, columns)
            yield left, right, weigh(pairs, compare_partition(pairs, comparisons), model)


def _stored_chunks(prepared: Prepared, store: list, model: dict, report: Progress) -> Iterator[Scored]:
    """Candidate pairs whose gammas training kept, weighed with the trained model (and dropped from ``store``)."""
    columns = weighing_columns(prepared)
    total, done = sum(len(left) for left, _, _ in store), 0
    store.reverse()
    while store:
        left, right, gammas = store.pop()
        yield left, right, weigh(pair_columns(prepared, left, right, columns), gammas, model)
        done += len(left)
        report("score", done, total)


def _kept(chunks: Iterator[Scored], review: float, cannot: np.ndarray
          ) -> tuple[pd.DataFrame | None, np.ndarray, np.ndarray, int]:
    """The scored pairs at or above the ``review`` probability, without record keys (None when no
    pair was scored), and their record positions; the pairs a guard forbids, with the ``cannot``
    pairs; how many pairs were scored.

    Each chunk's columns are filtered as they come and joined once at the end, column by column,
    so the kept pairs are held about once. A guard forbids a cluster, not only a pair: no chain
    of links may join the two records.
    """
    kept: dict[str, list[np.ndarray]] = {}
    at, guarded, scored = [np.zeros((0, 2), dtype=np.int32)], [cannot], 0
    for left, right, result in chunks:
        probability = result["match_probability"]
        scored += len(probability)
        keep = probability >= review
        for name, values in result.items():
            kept.setdefault(name, []).append(values[keep])
        at.append(np.column_stack([left[keep], right[keep]]))
        guard = result["match_tier"] == TIERS.index(TIER_GUARD)
        guarded.append(np.column_stack([left[guard], right[guard]]))
    if not kept:
        return None, np.concatenate(at), np.concatenate(guarded), scored
    columns = {name: np.concatenate(kept.pop(name)) for name in list(kept)}
    columns["match_tier"] = tier_names(columns["match_tier"])
    return pd.DataFrame(columns, copy=False), np.concatenate(at), np.concatenate(guarded), scored


def _decided(prepared: Prepared, model: dict, must: np.ndarray, cannot: np.ndarray) -> list[pd.DataFrame]:
    """The pairs stewards decided, scored, with their decision as tier and probability.

    Scored even when there are none: they give the result its columns when no pair was kept.
    """
    decided = []
    for tier, probability, idx in ((TIER_MUST_LINK, 1.0, must), (TIER_CANNOT_LINK, 0.0, cannot)):
        scored = score_partition(pair_columns(prepared, idx[:, 0], idx[:, 1], matching_columns(prepared)), model)
        scored["match_probability"], scored["match_tier"] = probability, tier
        decided.append(scored)
    return decided


def _apply_decisions(kept: pd.DataFrame | None, at: np.ndarray, decided: list[pd.DataFrame],
                     must: np.ndarray, cannot: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """All kept pairs (at record positions ``at``), with steward decisions (:func:`_decided`)
    overriding the scores.

    Must-link pairs link and cannot-link pairs never do, whatever the model says; both keep
    their scores and levels as evidence. Returns the pairs and their positions.
    """
    if kept is not None and not len(must) + len(cannot):
        return kept, at
    pairs = pd.concat([*decided, *([] if kept is None else [kept])], ignore_index=True)
    at = np.concatenate([must, cannot, at])
    # Decisions come first, so they win over the model's score of the same pair.
    first = ~pd.DataFrame(at).duplicated().to_numpy()
    return pairs[first].reset_index(drop=True), at[first]


def _chunks(plans: list[blocking.RulePlan], index: int, sources: np.ndarray | None, settings: MatchSettings,
            report: Progress, stage: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Candidate pairs of one rule in chunks, reporting progress against all rules' pairs."""
    total = sum(p.pairs for p in plans)
    done = sum(p.pairs for p in plans[:index])
    for left, right, raw in blocking.candidate_pairs(plans, index, settings.chunk_pairs, sources):
        yield left, right
        done += raw
        report(stage, done, total)


def _random_pair_patterns(prepared: Prepared, settings: MatchSettings, sources: np.ndarray | None,
                          columns: list[str]) -> Patterns:
    """The level patterns of the random pairs u is estimated from."""
    comparisons = settings.comparisons()
    counted = Patterns(len(comparisons))
    sample, left, right = _random_pairs(prepared, settings, sources)
    # Compared on a second thread while the candidates are: in smaller chunks, the two threads'
    # chunks in flight together peak little above one candidate chunk.
    step = max(settings.chunk_pairs // 4, 1)
    for start in range(0, len(left), step):
        chunk = slice(start, start + step)
        counted.count(pack(compare_partition(pair_columns(sample, left[chunk], right[chunk], columns), comparisons)))
        memory.release()
    return counted


def _random_pairs(prepared: Prepared, settings: MatchSettings, sources: np.ndarray | None
                  ) -> tuple[Prepared, np.ndarray, np.ndarray]:
    """A seeded random sample of records and all pairs among them (as Splink does).

    Pairs within a sample of a few hundred records read a table that fits in cache, unlike
    pairs drawn from the whole data; nearly all are non-matches, which is what u measures.
    """
    n = len(prepared)
    size = min(n, int(np.ceil(np.sqrt(2 * settings.u_sample_pairs))) + 1)
    rng = np.random.default_rng(settings.seed)
    sample = np.sort(rng.choice(n, size, replace=False))
    left, right = np.triu_indices(size, 1)
    if sources is not None:
        keep = sources[sample][left] != sources[sample][right]
        left, right = left[keep], right[keep]
    return prepared.subset(sample), left, right


def _possible_pairs(n: int, sources: np.ndarray | None) -> int:
    if sources is None:
        return n * (n - 1) // 2
    sizes = np.bincount(sources).astype(object)
    return int((sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2)


def _pair_indices(record_keys: pd.Series, *decided: pd.DataFrame | None) -> list[np.ndarray]:
    """Steward pairs as ``(n, 2)`` record positions; pairs naming unknown records are ignored."""
    index = pd.Index(record_keys) if any(p is not None and len(p) for p in decided) else None
    out = []
    for pairs in decided:
        if index is None or pairs is None or pairs.empty:
            out.append(np.zeros((0, 2), dtype=np.int32))
            continue
        left, right = index.get_indexer(pairs["record_key_l"]), index.get_indexer(pairs["record_key_r"])
        ok = (left >= 0) & (right >= 0) & (left != right)
        out.append(np.column_stack([np.minimum(left, right)[ok], np.maximum(left, right)[ok]]).astype(np.int32))
    return out


@contextmanager
def _stage(stats: dict, name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    stats["seconds"][name] = stats["seconds"].get(name, 0.0) + time.perf_counter() - start

