"""The validate stage: a pandera schema for canonical records; failures become quarantine rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

#: Flag reasons from standardisation that quarantine the whole row by default.
QUARANTINE_FLAGS = frozenset({"invalid_email", "invalid_date"})

#: Columns of a quarantine frame (the workspace adds run, source and status).
QUARANTINE_COLUMNS = ["record_key", "source_ref", "stage", "reason", "column", "value", "detail"]

_IDENTITY = ("first_name", "last_name", "organization_name")


def _has_identity(df: pd.DataFrame) -> pd.Series:
    named = pd.Series(False, index=df.index)
    for col in _IDENTITY:
        if col in df:
            named |= df[col].notna() & (df[col].astype("string").str.strip() != "").fillna(False)
    for col in ("emails", "phones"):
        if col in df:
            named |= df[col].map(lambda v: bool(v) if isinstance(v, list) else False).astype(bool)
    return named


CANONICAL_SCHEMA = pa.DataFrameSchema(
    {
        "record_key": pa.Column(str, nullable=False),
        "source_id": pa.Column(str, pa.Check(lambda s: s.str.strip().str.len() > 0, name="missing_source_id"),
                               nullable=False),
        "birth_date": pa.Column(
            object, pa.Check(lambda s: s.astype("string").str.fullmatch(r"\d{4}-\d{2}-\d{2}"),
                             name="invalid_date", ignore_na=True),
            nullable=True, required=False),
        "country": pa.Column(
            object, pa.Check(lambda s: s.astype("string").str.fullmatch(r"[A-Z]{2}"),
                             name="invalid_country", ignore_na=True),
            nullable=True, required=False),
    },
    # No name, organisation, e-mail or phone: nothing to migrate or match on.
    checks=[pa.Check(_has_identity, name="no_identity")],
    coerce=False,
    name="canonical_record",
)

#: pandera's built-in check names -> our stable reason codes.
_BUILTIN_REASONS = {"not_nullable": "missing_value", "field_uniqueness": "duplicate_source_id",
                    "column_in_dataframe": "missing_column", "dtype": "wrong_type"}


@dataclass
class Validated:
    """Output of :func:`validate`: records that passed and quarantine rows for those that did not."""

    records: pd.DataFrame
    quarantine: pd.DataFrame


def validate(records: pd.DataFrame, flags: pd.DataFrame | None = None,
             quarantine_flags: frozenset[str] = QUARANTINE_FLAGS) -> Validated:
    """Validate canonical records lazily; every failure becomes a quarantine row, never an exception.

    A row fails when the pandera schema rejects it, or when standardisation flagged one
    of its values for quarantine (the flag's ``action``, set by ``rules.standardise``; flags
    without an action quarantine when their reason is in ``quarantine_flags``). Each
    failure has a stable reason code, the column and the offending value.

    Example:
        >>> df = pd.DataFrame({"record_key": ["a:1", "a:2"], "source_id": ["1", "2"],
        ...     "source_ref": ["line 2", "line 3"], "last_name": ["Lee", None],
        ...     "emails": [[], []], "phones": [[], []]})
        >>> validate(df).quarantine[["record_key", "reason"]].values.tolist()
        [['a:2', 'no_identity']]
    """
    failures: list[pd.DataFrame] = []
    try:
        CANONICAL_SCHEMA.validate(records, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        if len(cases):
            idx = cases["index"].to_numpy()
            reasons = cases["check"].astype(str).map(lambda c: _BUILTIN_REASONS.get(c.split("(")[0], c))
            is_frame_check = cases["schema_context"] == "DataFrameSchema"
            failures.append(pd.DataFrame({
                "record_key": records.loc[idx, "record_key"].to_numpy(),
                "source_ref": records.loc[idx, "source_ref"].to_numpy(),
                "stage": "validate",
                "reason": reasons.to_numpy(),
                "column": cases["column"].where(~is_frame_check, None).to_numpy(),
                "value": cases["failure_case"].where(~is_frame_check, None).astype(object).to_numpy(),
                "detail": cases["check"].astype(str).to_numpy(),
            }).drop_duplicates(["record_key", "reason"]))
    if flags is not None and len(flags):
        wanted = flags["action"] == "quarantine" if "action" in flags else flags["reason"].isin(quarantine_flags)
        bad = flags[wanted]
        if len(bad):
            ref = records.set_index("record_key")["source_ref"]
            failures.append(pd.DataFrame({
                "record_key": bad["record_key"].to_numpy(),
                "source_ref": bad["record_key"].map(ref).to_numpy(),
                "stage": "standardise",
                "reason": bad["reason"].to_numpy(),
                "column": bad["column"].to_numpy(),
                "value": bad["value"].to_numpy(),
                "detail": ("rule " + bad["rule"].astype(str)).to_numpy(),
            }))
    if not failures:
        return Validated(records, pd.DataFrame(columns=QUARANTINE_COLUMNS))
    quarantined = pd.concat(failures, ignore_index=True)
    # One row per record: the first failure names the reason; the rest go into detail.
    grouped = quarantined.groupby("record_key", sort=False)
    first = grouped.head(1).copy()
    others = grouped["reason"].agg(lambda r: ", ".join(dict.fromkeys(r)))
    first["detail"] = first["record_key"].map(others).where(
        first["record_key"].map(others) != first["reason"], first["detail"])
    keep = ~records["record_key"].isin(first["record_key"])
    return Validated(records[keep], first.reset_index(drop=True)[QUARANTINE_COLUMNS])
