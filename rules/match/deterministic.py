"""Deterministic matching: records sharing every field of a rule are the same customer."""

from __future__ import annotations

import pandas as pd

from mappings.canonical import LIST_FIELDS

PAIR_COLUMNS = ["record_key_l", "record_key_r", "rule"]


def deterministic_pairs(records: pd.DataFrame, rules: list[list[str]]) -> pd.DataFrame:
    """Link records that agree exactly on all fields of any rule (missing values never agree).

    List fields (``emails``, ``phones``) agree when any of their values is shared. Each
    group of agreeing records yields a star of pairs (its smallest key to every other),
    enough for clustering without the quadratic all-pairs set.

    Example:
        >>> df = pd.DataFrame({"record_key": ["a:1", "b:9", "a:2"],
        ...     "emails": [["x@y.org"], ["x@y.org"], []], "phones": [[], [], []]})
        >>> deterministic_pairs(df, [["emails"]]).values.tolist()
        [['a:1', 'b:9', 'emails']]
    """
    found = []
    for rule in rules:
        keyed = records[["record_key"]].copy()
        keyed["key"] = ""
        for field in rule:
            values = records[field]
            if field in LIST_FIELDS:
                keyed = keyed.join(values.explode().rename("_v"))
            else:
                keyed = keyed.join(values.rename("_v"))
            part = keyed["_v"].astype("string").str.strip().str.lower()
            keyed["key"] = keyed["key"] + "\x1f" + part
            keyed = keyed.drop(columns="_v")
        keyed = keyed.dropna(subset=["key"]).drop_duplicates()
        if keyed.empty:
            continue
        anchor = keyed.groupby("key")["record_key"].transform("min")
        edges = pd.DataFrame({"record_key_l": anchor, "record_key_r": keyed["record_key"]})
        edges = edges[edges["record_key_l"] != edges["record_key_r"]]
        edges["rule"] = "+".join(rule)
        found.append(edges)
    if not found:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    pairs = pd.concat(found, ignore_index=True)
    return pairs.drop_duplicates(["record_key_l", "record_key_r"]).sort_values(
        ["record_key_l", "record_key_r"]).reset_index(drop=True)
