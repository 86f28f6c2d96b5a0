"""Quick mode for one file, like csvdedupe: map the headers (:func:`mappings.suggest.suggest_mapping`),
standardise, match, and write the input rows back with ``cluster_id`` and ``match_probability``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mappings.canonical import LIST_FIELDS
from mappings.suggest import suggest_mapping
from migrate.errors import InputError
from rules.addresses import country_code
from rules.match.pipeline import MatchResult, Progress, link
from rules.match.settings import MatchSettings
from rules.standardise import standardise

#: Canonical fields quick mode reads from a file (the others a header suggests are left alone).
MATCH_FIELDS = ("first_name", "middle_name", "last_name", "full_name", "organization_name", "emails", "phones",
                "birth_date", "street", "city", "postcode", "country")


def default_settings(records: pd.DataFrame) -> MatchSettings:
    """Blocking rules and comparisons for whichever canonical fields the records fill."""
    filled = {c for c in records.columns
              if records[c].map(lambda v: bool(v) if isinstance(v, list) else pd.notna(v) and v != "").any()}
    kinds = {"first_name": "name", "last_name": "name", "organization_name": "string", "emails": "email",
             "phones": "phone", "birth_date": "date", "postcode": "postcode", "street": "address", "city": "string"}
    compare = {f: k for f, k in kinds.items() if f in filled}
    rules = [["last_name", "postcode"], ["first_name", "birth_date"], ["emails"], ["phones"],
             ["postcode", "birth_date"], ["phonetic(last_name)", "first(first_name, 1)"],
             ["organization_name", "postcode"], ["organization_name", "city"]]
    blocking = [r for r in rules if all(re.sub(r"^\w+\((\w+).*", r"\1", t) in filled for t in r)]
    if not compare or not blocking:
        raise InputError("nothing to match on: the file has no name, e-mail or phone column that could be recognised")
    return MatchSettings.model_validate({
        "blocking": blocking, "compare": compare, "guards": ["birth_date"] if "birth_date" in filled else [],
    })


def dedupe_csv(path_in: str | Path, path_out: str | Path, *, default_region: str | None = None,
               settings: MatchSettings | None = None, progress: Progress | None = None) -> MatchResult:
    """Find the duplicates in one contacts CSV and write it back with ``cluster_id`` and ``match_probability``.

    ``cluster_id`` numbers the clusters from 1 in order of first appearance; ``match_probability``
    is a row's strongest link inside its cluster (empty for a row on its own).

    Args:
        path_in: The CSV to deduplicate (UTF-8, with a header row).
        path_out: Where to write the rows with the two new columns.
        default_region: Region for phone numbers without a country code; by default the
            most common country in the file, if it has a country column.
        settings: Match settings; by default inferred from the columns found.
        progress: Called with ``(stage, done, total)`` as long stages advance.

    Raises:
        InputError: The file cannot be read, or has nothing to match on.
    """
    path_in = Path(path_in)
    try:
        rows = pd.read_csv(path_in, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path_in}: cannot read as CSV ({exc})") from None
    mapping = {s.field: s.columns for s in suggest_mapping(list(rows.columns)) if s.field in MATCH_FIELDS}
    canonical = pd.DataFrame({"record_key": [f"{path_in.stem}:{i + 1}" for i in range(len(rows))],
                              "source": path_in.stem, "source_id": [str(i + 1) for i in range(len(rows))]})
    for field, columns in mapping.items():
        if field in LIST_FIELDS:
            canonical[field] = [[v for v in values if v] for values in rows[columns].itertuples(index=False)]
        else:
            canonical[field] = rows[columns[0]].to_numpy()
    records = standardise(canonical, default_region or _common_region(canonical)).records
    result = link(records, settings or default_settings(records), progress=progress)
    _annotated(rows, result).to_csv(path_out, index=False)
    return result


def _annotated(rows: pd.DataFrame, result: MatchResult) -> pd.DataFrame:
    """The input rows plus ``cluster_id`` and ``match_probability``."""
    clusters = result.clusters
    # Oversized clusters are held for review, so their rows stay apart here.
    cluster = clusters["cluster_id"].where(~clusters["cluster_id"].isin(result.oversized), clusters["record_key"])
    numbers = pd.factorize(cluster.to_numpy())[0] + 1
    linked = result.pairs[result.pairs["match_probability"] >= result.model["settings"]["thresholds"]["link"]]
    strongest = pd.concat([linked[["record_key_l", "match_probability"]].set_axis(["record_key", "p"], axis=1),
                           linked[["record_key_r", "match_probability"]].set_axis(["record_key", "p"], axis=1)]
                          ).groupby("record_key")["p"].max()
    probability = clusters["record_key"].map(strongest).to_numpy()
    alone = np.bincount(numbers)[numbers] == 1
    out = rows.copy()
    out["cluster_id"] = numbers
    out["match_probability"] = np.where(alone, np.nan, probability)
    return out


def _common_region(records: pd.DataFrame) -> str | None:
    """The most common country of the file (for phones written without a country code)."""
    if "country" not in records:
        return None
    counts = pd.Series(records["country"]).replace("", None).dropna().value_counts()
    return country_code(pd.Series(counts.index[:1]))["country"].iloc[0] if len(counts) else None
