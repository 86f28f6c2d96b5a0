"""Survivorship: one golden value per attribute per cluster, with the record and rule behind it.

Each attribute's rules (``rules.survive`` in migration.yaml; ``default`` where an attribute
has none of its own) are tie-breakers applied in order until one decides. Every rule is a
function in :data:`RULES` that gives each candidate value a sort key (smaller wins), so a
whole attribute is decided with one sort, never a loop over clusters. The rules, with
examples, are documented in docs/golden-records.md; their cases live in tests/cases/survive.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mappings.canonical import DICT_FIELDS, GOLDEN_ATTRIBUTES, LIST_FIELDS

#: For ``most_restrictive``: the value that wins per consent attribute (an opt-out).
RESTRICTIVE = {"email_opt_in": False, "do_not_contact": True}

#: Lineage rule when every record holding a value agrees (or only one holds one): nothing to decide.
AGREEMENT = "agreement"
#: Lineage rule when no configured rule separates different values and the record key decided:
#: a conflict for a steward.
TIEBREAK = "tiebreak"
#: Lineage rule of a list attribute gathered from every record.
UNION = "union"

CONFLICT_COLUMNS = ["cluster_id", "attribute", "record_key", "source", "value"]


@dataclass
class Survived:
    """Output of :func:`survive`: golden attributes per cluster, lineage, anchors and conflicts."""

    golden: pd.DataFrame        # index cluster_id, one column per golden attribute
    from_record: pd.DataFrame   # same shape: the record_key each value came from
    rule: pd.DataFrame          # same shape: the rule that decided each value
    anchors: pd.Series          # cluster_id -> record_key of the record that leads the cluster
    conflicts: pd.DataFrame     # CONFLICT_COLUMNS: the tied values where TIEBREAK decided


@dataclass(frozen=True)
class _Context:
    records: pd.DataFrame      # every record, indexed like the candidates
    attribute: str
    completeness: pd.Series    # per record: how many golden attributes it fills
    age: pd.Series             # per record: seconds before the epoch it was updated (newest smallest), undated inf


RulesFor = Callable[[str], list]
SortKey = Callable[[pd.DataFrame, _Context, object], "np.ndarray | None"]


def survive(records: pd.DataFrame, rules_for: RulesFor,
            attributes: tuple[str, ...] = GOLDEN_ATTRIBUTES, anchor_rules: list | None = None) -> Survived:
    """Pick each golden attribute per cluster by applying its rules in order until one decides.

    The record key breaks a final tie, so the outcome never depends on input order; when
    it had to choose between different values, the rule is ``tiebreak`` and the tied
    values are returned as a conflict. ``anchor_rules`` rank whole records: the first one
    leads its cluster (it counts as loaded, the others as merged).

    Args:
        records: ``record_key``, ``cluster_id``, ``source``, ``source_updated_at`` and the attributes.
        rules_for: attribute -> its ordered rules (``SurviveConfig.rules_for``).
        attributes: the attributes to decide.
        anchor_rules: rules ranking whole records for the anchor (usually the ``default`` rules).

    Example:
        >>> recs = pd.DataFrame({"record_key": ["crm:1", "erp:1"], "cluster_id": ["c", "c"],
        ...     "source": ["crm", "erp"], "source_updated_at": ["2024-01-01", "2020-01-01"],
        ...     "last_name": ["Lee", "LEE"], "emails": [["a@x.org"], ["b@x.org"]]})
        >>> out = survive(recs, lambda a: [{"source_priority": ["erp", "crm"]}], ("last_name",))
        >>> out.golden.loc["c", "last_name"], out.from_record.loc["c", "last_name"], out.rule.loc["c", "last_name"]
        ('LEE', 'erp:1', 'source_priority')
    """
    df = records.reset_index(drop=True)
    # Integer stand-ins for the cluster and the key order: sorting them is far cheaper than strings.
    df["_c"] = pd.factorize(df["cluster_id"])[0]
    df["_r"] = np.argsort(np.argsort(df["record_key"].to_numpy(dtype=str), kind="stable"), kind="stable")
    clusters = pd.Index(df["cluster_id"].unique(), name="cluster_id")
    golden = pd.DataFrame(index=clusters)
    from_record = pd.DataFrame(index=clusters)
    rule = pd.DataFrame(index=clusters)
    conflicts = []
    completeness, age = _completeness(df, attributes), _age(df)
    for attribute in attributes:
        if attribute not in df:
            continue
        present = _present(df[attribute], attribute)
        cand = df.loc[present.to_numpy(), ["record_key", "cluster_id", "source", "_c", "_r"]].copy()
        cand["_value"] = df.loc[present.to_numpy(), attribute]
        keys = _sort_keys(cand, _Context(df, attribute, completeness, age), rules_for(attribute))
        cand = cand.sort_values(["_c", *(k for k, _ in keys), "_r"], kind="stable")
        chosen = cand[_first_of_cluster(cand)].set_index("cluster_id")
        if attribute in LIST_FIELDS and any(_name(r) == UNION for r in rules_for(attribute)):
            golden[attribute] = _union(cand).reindex(clusters)
            rule_names = pd.Series(UNION, index=chosen.index, dtype=object)
        else:
            golden[attribute] = chosen["_value"].reindex(clusters)
            rule_names = _deciding_rule(cand, chosen, keys)
            conflicts.append(_tied(cand, chosen, keys, rule_names[rule_names == TIEBREAK].index, attribute))
        from_record[attribute] = chosen["record_key"].reindex(clusters)
        rule[attribute] = rule_names.reindex(clusters)
    for attribute in golden.columns:
        if attribute in LIST_FIELDS:
            golden[attribute] = golden[attribute].map(lambda v: v if isinstance(v, list) else [])
    anchors = _anchors(df, anchor_rules or [], completeness, age)
    conflict_frame = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame(columns=CONFLICT_COLUMNS)
    return Survived(golden, from_record, rule, anchors, conflict_frame)


def _first_of_cluster(sorted_rows: pd.DataFrame) -> np.ndarray:
    """Which rows of a frame sorted by cluster start their cluster: the best candidate of each."""
    codes = sorted_rows["_c"].to_numpy()
    return np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, dtype=bool)


def _name(rule: object) -> str:
    if isinstance(rule, str):
        return rule
    if isinstance(rule, dict):
        return next(iter(rule))
    return "source_priority"  # a SourcePriority model


def _present(values: pd.Series, attribute: str) -> pd.Series:
    """Which records hold a value: an empty list or dict is as missing as None."""
    if attribute in LIST_FIELDS or attribute in DICT_FIELDS:
        return values.map(lambda v: isinstance(v, (list, dict)) and bool(v))
    return values.notna()


def _age(df: pd.DataFrame) -> pd.Series:
    """Per record, minus its ``source_updated_at`` in seconds (newest smallest); undated records inf."""
    if "source_updated_at" not in df:
        return pd.Series(0.0, index=df.index)
    stamps = pd.to_datetime(df["source_updated_at"], errors="coerce", utc=True,
                            format="ISO8601")  # standardised stamps; one format per column would drop the rest
    return -(stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().fillna(-np.inf)


def _completeness(df: pd.DataFrame, attributes: tuple[str, ...]) -> pd.Series:
    filled = pd.Series(0, index=df.index)
    for a in attributes:
        if a in df:
            filled += _present(df[a], a).astype(int)
    return filled


def _source_priority(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray:
    """Trust sources in the listed order; sources not listed rank after them, equal among themselves.

    ``{source_priority: [erp, contacts]}``: erp's "LEE" beats contacts' "Lee". Give an
    attribute its own list to trust sources per field (``phones: [{source_priority: [contacts, erp]}]``).
    """
    order = rule["source_priority"] if isinstance(rule, dict) else rule.source_priority  # type: ignore[union-attr]
    rank = {s: r for r, s in enumerate(order)}
    return cand["source"].map(rank).fillna(len(rank)).astype(int).to_numpy()


def _most_recent(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray:
    """The value of the record updated last (``source_updated_at``); undated records rank last.

    A 2024 "Smith" beats a 2019 "Jones".
    """
    return ctx.age.loc[cand.index].to_numpy()


def _most_frequent(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray:
    """The value most records of the cluster hold: two "Ann" beat one "Anne"."""
    text = cand["_value"].astype(str)
    return -text.groupby([cand["cluster_id"], text]).transform("size").to_numpy()


def _longest(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray:
    """The longest value: "Katherine" beats "Kate"; for lists and identifiers, the most entries."""
    values = cand["_value"]
    if ctx.attribute in LIST_FIELDS or ctx.attribute in DICT_FIELDS:
        return -values.map(len).to_numpy()
    return -values.astype(str).str.len().to_numpy()


def _most_complete(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray:
    """The value of the record filling the most golden attributes, however long the value itself.

    Unlike ``longest``, it judges the whole record: a row with name, e-mail, phone and
    address is trusted over a bare row, even for a shorter ``first_name``.
    """
    return -ctx.completeness.loc[cand.index].to_numpy()


def _most_restrictive(cand: pd.DataFrame, ctx: _Context, rule: object) -> np.ndarray | None:
    """For consent attributes, any opt-out wins: one ``email_opt_in: false`` beats any number of true."""
    if ctx.attribute not in RESTRICTIVE:
        return None
    return (cand["_value"].astype(bool) != RESTRICTIVE[ctx.attribute]).astype(int).to_numpy()


def _no_preference(cand: pd.DataFrame, ctx: _Context, rule: object) -> None:
    """``non_null``: any value beats none (missing values never win under any rule); ``union``
    gathers list values instead of choosing one. Neither ranks values."""
    return None


#: Rule name -> its sort key (smaller wins; None ranks nothing for that attribute).
RULES: dict[str, SortKey] = {
    "source_priority": _source_priority,
    "most_recent": _most_recent,
    "most_frequent": _most_frequent,
    "longest": _longest,
    "most_complete": _most_complete,
    "most_restrictive": _most_restrictive,
    "non_null": _no_preference,
    UNION: _no_preference,
}


def _sort_keys(cand: pd.DataFrame, ctx: _Context, rules: list) -> list[tuple[str, str]]:
    """Add one sort-key column per rule that ranks values; returns (column, rule name) pairs."""
    keys = []
    for i, rule in enumerate(rules):
        name = _name(rule)
        key = RULES[name](cand, ctx, rule)
        if key is not None:
            cand[f"_k{i}"] = key
            keys.append((f"_k{i}", name))
    return keys


def _union(cand: pd.DataFrame) -> pd.Series:
    """Per cluster, every distinct list value: each record's primary first, in rank order, then the rest.

    ``cand`` is sorted best record first, so the golden primary is the best record's primary.
    """
    items = cand[["cluster_id", "_c", "_value"]].assign(_rank=np.arange(len(cand))).explode("_value")
    items["_pos"] = items.groupby(level=0).cumcount()
    items["_secondary"] = items["_pos"] > 0
    items = items.sort_values(["_c", "_secondary", "_rank", "_pos"], kind="stable")
    items = items.drop_duplicates(["cluster_id", "_value"])
    return items.groupby("cluster_id", sort=False)["_value"].agg(list)


def _deciding_rule(cand: pd.DataFrame, chosen: pd.DataFrame, keys: list[tuple[str, str]]) -> pd.Series:
    """The first rule on which the winner beats the best candidate with a different value."""
    best_value = cand["cluster_id"].map(chosen["_value"].astype(str))
    others = cand[cand["_value"].astype(str) != best_value]
    runner = others[_first_of_cluster(others)].set_index("cluster_id")
    out = pd.Series(AGREEMENT, index=chosen.index, dtype=object)
    contested = chosen.index.intersection(runner.index)
    if len(contested) == 0:
        return out
    out[contested] = TIEBREAK
    for key, name in reversed(keys):
        differs = chosen.loc[contested, key].to_numpy() != runner.loc[contested, key].to_numpy()
        out[contested[differs]] = name
    return out


def _tied(cand: pd.DataFrame, chosen: pd.DataFrame, keys: list[tuple[str, str]], clusters: pd.Index,
          attribute: str) -> pd.DataFrame:
    """The candidates of ``clusters`` that rank equal with the winner on every rule: the conflict."""
    rows = cand[cand["cluster_id"].isin(clusters)]
    equal = np.ones(len(rows), dtype=bool)
    for key, _ in keys:
        equal &= rows[key].to_numpy() == rows["cluster_id"].map(chosen[key]).to_numpy()
    tied = rows[equal]
    return pd.DataFrame({"cluster_id": tied["cluster_id"].to_numpy(), "attribute": attribute,
                         "record_key": tied["record_key"].to_numpy(), "source": tied["source"].to_numpy(),
                         "value": tied["_value"].to_numpy()}, columns=CONFLICT_COLUMNS)


def _anchors(df: pd.DataFrame, rules: list, completeness: pd.Series, age: pd.Series) -> pd.Series:
    """The record leading each cluster under the default rules: it counts as loaded, the rest as merged."""
    cand = df[["record_key", "cluster_id", "source", "_c", "_r"]].copy()
    cand["_value"] = 1
    keys = _sort_keys(cand, _Context(df, "default", completeness, age), rules)
    cand = cand.sort_values(["_c", *(k for k, _ in keys), "_r"], kind="stable")
    return cand[_first_of_cluster(cand)].set_index("cluster_id")["record_key"]
