"""The standardise stage: canonical records in, standardised records and flags out."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rules import addresses, consent, dates, emails, names, phones
from rules.rule import blank_to_na

#: Columns of the flags frame: a value a rule could not standardise.
FLAG_COLUMNS = ["record_key", "column", "reason", "value", "rule"]


@dataclass
class Standardised:
    """Output of :func:`standardise`: the records and the values rules could not handle."""

    records: pd.DataFrame
    flags: pd.DataFrame


def standardise(records: pd.DataFrame, default_region: str | None = None) -> Standardised:
    """Standardise canonical records: names, e-mails, phones (E.164), countries, dates, consent.

    Values a rule cannot handle are removed from the record and reported in ``flags`` with
    a stable reason code (``invalid_email``, ``invalid_phone``, ``invalid_date``...); the
    validate stage decides which flags quarantine the row.

    Example:
        >>> df = pd.DataFrame({"record_key": ["crm:1"], "first_name": ["ANN"],
        ...     "emails": [["Ann@X.org"]], "phones": [["020 7946 0018"]], "country": ["UK"]})
        >>> out = standardise(df, default_region="GB").records
        >>> out[["first_name", "emails", "phones", "country"]].iloc[0].tolist()
        ['Ann', ['ann@x.org'], ['+442079460018'], 'GB']
    """
    df = records.copy()
    flags: list[pd.DataFrame] = []

    def flag(mask: pd.Series, column: str, reason: str, values: pd.Series, rule_code: str) -> None:
        if mask.any():
            flags.append(pd.DataFrame({
                "record_key": df.loc[mask, "record_key"], "column": column, "reason": reason,
                "value": values[mask].astype(str), "rule": rule_code,
            }))

    for col in ("title", "suffix", "street", "city", "region", "organization_name"):
        if col in df:
            df[col] = blank_to_na(df[col]).str.replace(r"\s+", " ", regex=True).astype("object")
    for col in ("first_name", "middle_name", "last_name"):
        if col in df:
            df[col] = names.proper_case(df[col]).astype("object")

    if "country" in df:
        raw = blank_to_na(df["country"])
        df["country"] = addresses.country_code(df["country"])
        flag(raw.notna() & df["country"].isna(), "country", "invalid_country", raw, "AD01")
    if "postcode" in df:
        df["postcode"] = addresses.normalise_postcode(df["postcode"])

    if "emails" in df:
        df["emails"] = _standardise_list(df, "emails", emails.normalise_emails, "email", flag, "invalid_email", "EM01")
    if "phones" in df:
        region = default_region
        df["phones"] = _standardise_list(
            df, "phones", lambda s: phones.to_e164(s, region), "phone", flag, "invalid_phone", "PH01")

    for col, reason in (("birth_date", "invalid_date"), ("source_updated_at", "invalid_timestamp")):
        if col in df:
            parsed = dates.to_iso_date(df[col])
            flag(~parsed["valid"], col, reason, df[col], "DT01")
            df[col] = parsed["date"]
    for col in ("email_opt_in", "do_not_contact"):
        if col in df:
            df[col] = consent.to_bool(df[col])

    flag_frame = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame(columns=FLAG_COLUMNS)
    return Standardised(df, flag_frame)


def _standardise_list(df, column, func, out_column, flag, reason, rule_code) -> pd.Series:
    """Standardise a list column element-wise (exploded, vectorised, then regrouped)."""
    lists = df[column].map(lambda v: v if isinstance(v, list) else ([] if v is None or v != v else [v]))
    exploded = lists.explode()
    result = func(exploded)
    bad = ~result["valid"]
    if bad.any():
        positions = exploded.index[bad.to_numpy()]
        flag(df.index.isin(positions), column, reason,
             exploded[bad].groupby(level=0).first().reindex(df.index), rule_code)
    good = result[out_column].dropna()
    regrouped = good.groupby(level=0, sort=False).agg(lambda s: list(dict.fromkeys(s)))
    return regrouped.reindex(df.index).map(lambda v: v if isinstance(v, list) else [])
