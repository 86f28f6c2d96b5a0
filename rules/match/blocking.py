"""Blocking: which pairs of records are worth comparing, generated in bounded chunks.

Each rule gives every record a 64-bit key (0 when any term is missing, so missing values never
block together). Records sharing a key with another are sorted by block once; pairs are
generated from that order in chunks of about ``chunk_pairs``, so a rule with many millions of pairs never sits in memory at
once. A pair an earlier rule already produced is dropped, so every candidate pair is scored
exactly once, and blocks above ``max_block_size`` records are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from rules.match import features as fx
from rules.match import memory
from rules.match.settings import BlockingTerm, MatchSettings, field_kind


def term_values(cols: fx.Columns, term: BlockingTerm) -> fx.Distinct:
    """The normalised value one blocking term gives each record (missing stays missing)."""
    n = term.n or 0
    by_function: dict[str | None, fx.Normalise | None] = {
        "phonetic": fx.phonetic, "translit": fx.translit,
        "first": lambda v: pc.utf8_slice_codeunits(fx.casefold(v), 0, n),
        "last": lambda v: pc.utf8_slice_codeunits(fx.casefold(v), -n),
        "year": lambda v: pc.utf8_slice_codeunits(v, 0, 4),
        "local": lambda v: fx.local_part(fx.casefold(v)), "domain": lambda v: fx.domain(fx.casefold(v)),
        None: {"identifier": fx.identifier_key, "name": fx.casefold, "org": fx.casefold,
               "text": fx.casefold}.get(field_kind(term.field) or ""),
    }
    func = by_function[term.function]
    # Standardised e-mails, phones, dates and postcodes are already canonical: no second pass.
    return cols[term.field].map(func) if func else cols[term.field]


def rule_terms(cols: fx.Columns, settings: MatchSettings) -> list[list[fx.Keyed]]:
    """Per blocking rule, the hashes of its terms' values: all :func:`plan_terms` needs of the columns."""
    return [[term_values(cols, term).hashes() for term in rule] for rule in settings.blocking_rules()]


def rule_keys(terms: list[fx.Keyed]) -> np.ndarray:
    """One uint64 key per record for a rule (the hashes of its terms); 0 where any term is missing."""
    key = np.zeros(len(terms[0].codes), dtype=np.uint64)
    missing = np.zeros(len(key), dtype=bool)
    for hashes in terms:
        h = hashes.table[hashes.codes]
        missing |= h == 0
        key = (key * np.uint64(0x100000001B3)) ^ h
    key[key == 0] = 1
    key[missing] = 0
    return key


@dataclass
class RulePlan:
    """A rule's records sorted by key, and how many pairs each sorted position opens."""

    name: str
    keys: np.ndarray  # block number per record (int32); 0 where alone, not blocked or in a skipped block
    order: np.ndarray  # indices of the records in blocks of two or more, block by block
    opens: np.ndarray  # pairs each sorted position forms with the later members of its block
    blocks: int
    largest_block: int
    oversized_blocks: int
    skipped_pairs: int
    pairs: int  # pairs this rule forms before removing those of earlier rules

    def compared(self) -> RulePlan:
        """The plan without the order its pairs come from: all later rules need of it are its keys."""
        none = np.zeros(0, dtype=np.int32)
        return replace(self, order=none, opens=none)


def plan_rule(name: str, keys: np.ndarray, max_block_size: int) -> RulePlan:
    """Group a rule's records by key and count its pairs; blocks above the limit are dropped.

    Keys are counted with a hash table, so only the records sharing a block with another (often
    a small part: one e-mail address per customer) are sorted; records alone form no pair.
    Records without a key (0: a term missing) form no block either: the table, sized by the
    values it is given, counts only the others.
    """
    present = np.flatnonzero(keys).astype(np.int32)
    codes, uniques = pd.factorize(keys[present])
    sizes = np.bincount(codes, minlength=len(uniques))
    big = sizes > max_block_size
    skipped = int((sizes[big] * (sizes[big] - 1) // 2).sum())
    shared = np.flatnonzero((sizes > 1) & ~big)
    number = np.zeros(len(sizes), dtype=np.int32)
    number[shared] = np.arange(1, len(shared) + 1, dtype=np.int32)
    # int32 block numbers and positions: a rule's plan costs 4 bytes a record, 8 more a record in a block.
    block = np.zeros(len(keys), dtype=np.int32)
    block[present] = number[codes]
    members = np.flatnonzero(block)
    order = members[np.argsort(block[members], kind="stable")].astype(np.int32)
    kept = sizes[shared]
    opens = (np.repeat(np.cumsum(kept), kept) - np.arange(len(order)) - 1).astype(np.int32)
    allowed = (sizes > 0) & ~big
    return RulePlan(name, block, order, opens, int(allowed.sum()), int(sizes[allowed].max(initial=0)),
                    int(big.sum()), skipped, int(opens.sum()))


def rule_name(rule: tuple[BlockingTerm, ...]) -> str:
    """A readable name for a rule: ``last_name & first(postcode, 3)``."""
    return " & ".join(str(t) for t in rule)


def plan(cols: fx.Columns, settings: MatchSettings) -> list[RulePlan]:
    """Plans for every blocking rule of the settings, in order."""
    return plan_terms(rule_terms(cols, settings), settings)


def plan_terms(terms: list[list[fx.Keyed]], settings: MatchSettings) -> list[RulePlan]:
    """Plans for every blocking rule from its terms' hashes (:func:`rule_terms`), in order.

    The columns, with their text, can be freed before: grouping records by key peaks on its own.
    """
    plans = []
    for rule, hashes in zip(settings.blocking_rules(), terms):
        plans.append(plan_rule(rule_name(rule), rule_keys(hashes), settings.max_block_size))
        memory.release()  # each rule's keys and hash table are freed before the next peaks
    return plans


def candidate_pairs(plans: list[RulePlan], index: int, chunk_pairs: int,
                    sources: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Yield ``(left, right, raw)`` chunks of rule ``index``'s new pairs (left < right).

    ``raw`` is how many pairs the chunk held before earlier rules' pairs (and, with ``sources``,
    same-source pairs) were removed: progress counts it against :attr:`RulePlan.pairs`.
    """
    rule = plans[index]
    cumulative = np.cumsum(rule.opens)
    bounds = np.searchsorted(cumulative, np.arange(chunk_pairs, cumulative[-1] if len(cumulative) else 0,
                                                   chunk_pairs), side="right")
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(rule.order)]):
        opens = rule.opens[lo:hi]
        total = int(opens.sum())
        if total == 0:
            continue
        pos = np.repeat(np.arange(lo, hi), opens)
        offset = np.arange(total) - np.repeat(np.cumsum(opens) - opens, opens)
        a, b = rule.order[pos], rule.order[pos + 1 + offset]
        left, right = np.minimum(a, b), np.maximum(a, b)
        keep = np.ones(total, dtype=bool)
        for earlier in plans[:index]:
            k = earlier.keys[left]
            keep &= ~((k == earlier.keys[right]) & (k != 0))
        if sources is not None:
            keep &= sources[left] != sources[right]
        yield left[keep], right[keep], total


def blocking_report(records: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """Candidate pairs per blocking rule and in total, counted before any scoring.

    Columns: ``rule``, ``pairs`` (new pairs this rule adds), ``cumulative_pairs``, ``blocks``,
    ``largest_block``, ``oversized_blocks`` and ``skipped_pairs`` (blocks above
    ``max_block_size``, which are skipped), ``warning``. The last row is the total.

    Example:
        >>> df = pd.DataFrame({"record_key": ["a:1", "a:2", "a:3"], "last_name": ["Lee", "Lee", "Lee"],
        ...                    "postcode": ["N1 1AA", "N1 1AA", None]})
        >>> s = MatchSettings.model_validate({"blocking": [["last_name", "postcode"], ["last_name"]],
        ...     "compare": {"last_name": "name"}})
        >>> blocking_report(df, s)["pairs"].tolist()
        [1, 2, 3]
    """
    plans = plan(fx.Columns(records), settings)
    sources = source_codes(records, settings)
    rows = []
    cumulative = 0
    for i, p in enumerate(plans):
        new = sum(len(left) for left, _, _ in candidate_pairs(plans, i, settings.chunk_pairs, sources))
        cumulative += new
        warning = (f"{p.oversized_blocks} block(s) above max_block_size={settings.max_block_size} skipped "
                   f"({p.skipped_pairs:,} pairs)") if p.oversized_blocks else ""
        rows.append({"rule": p.name, "pairs": new, "cumulative_pairs": cumulative, "blocks": p.blocks,
                     "largest_block": p.largest_block, "oversized_blocks": p.oversized_blocks,
                     "skipped_pairs": p.skipped_pairs, "warning": warning})
    rows.append({"rule": "total", "pairs": cumulative, "cumulative_pairs": cumulative,
                 "blocks": sum(r["blocks"] for r in rows),
                 "largest_block": max((r["largest_block"] for r in rows), default=0),
                 "oversized_blocks": sum(r["oversized_blocks"] for r in rows),
                 "skipped_pairs": sum(r["skipped_pairs"] for r in rows), "warning": ""})
    return pd.DataFrame(rows)


def source_codes(records: pd.DataFrame, settings: MatchSettings) -> np.ndarray | None:
    """Source of each record as an int, when only pairs across sources are wanted."""
    if settings.link_type != "link_only":
        return None
    return pd.factorize(records["source"])[0]
