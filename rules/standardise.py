"""The standardise stage: canonical records in, standardised records and flags out."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from migrate.errors import ConfigError
from rules import addresses, consent, dates, emails, names, phones
from rules.rule import RULES, clean_text, find_rule

#: Columns of the flags frame: a value a rule could not standardise, and what to do about it.
FLAG_COLUMNS = ["record_key", "column", "reason", "value", "rule", "action"]

#: Reasons whose value is removed from the record (the raw value stays in the flag).
DROPPED_REASONS = ("invalid_phone", "invalid_email", "invalid_date", "implausible_birth_date",
                   "invalid_timestamp", "invalid_country", "invalid_consent")
#: Reasons whose value is kept: a warning for the validate stage and stewards.
KEPT_REASONS = ("role_email", "invalid_postcode")

Action = Literal["flag", "quarantine"]
DateOrderOption = Literal["auto", "dmy", "mdy", "ymd"]

# Date columns: the rule that reads them, its function and the column it returns.
_DATE_COLUMNS = {
    "birth_date": ("dates.iso", dates.to_iso_date, "date"),
    "source_updated_at": ("dates.timestamp", dates.to_iso_timestamp, "timestamp"),
}
_ORGANIZATION_WORDS = {"organization", "organisation", "org", "company", "business", "account"}


class SourceStandardiseOptions(BaseModel):
    """Per-source overrides: how this source writes phones and dates."""

    model_config = ConfigDict(extra="forbid")

    default_region: str | None = None
    date_order: DateOrderOption | None = None

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return phones.check_region(value)


class StandardiseOptions(BaseModel):
    """``rules.standardise`` in migration.yaml.

    Each reason code takes an action: ``flag`` (the row goes on, the flag is reported) or
    ``quarantine`` (the validate stage holds the row back). The defaults quarantine what
    the validate stage has always quarantined: invalid e-mails and dates.
    """

    model_config = ConfigDict(extra="forbid")

    default_region: str | None = None
    region_from_country: bool = True
    date_order: DateOrderOption = "auto"
    skip: list[str] = Field(default_factory=list)
    sources: dict[str, SourceStandardiseOptions] = Field(default_factory=dict)
    invalid_phone: Action = "flag"
    invalid_email: Action = "quarantine"
    role_email: Action = "flag"
    invalid_date: Action = "quarantine"
    implausible_birth_date: Action = "flag"
    invalid_timestamp: Action = "flag"
    invalid_country: Action = "flag"
    invalid_postcode: Action = "flag"
    invalid_consent: Action = "flag"

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return phones.check_region(value)

    @field_validator("skip")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        unknown = [key for key in value if find_rule(key) is None]
        if unknown:
            raise ValueError(f"unknown rule {', '.join(map(repr, unknown))}; known: {', '.join(sorted(RULES))}")
        return [find_rule(key).name for key in value]

    @classmethod
    def from_config(cls, data: dict[str, Any] | None, where: str = "rules.standardise") -> StandardiseOptions:
        """Validate the config block, raising one :class:`ConfigError` that names every bad key.

        Example:
            >>> StandardiseOptions.from_config({"default_region": "XX"})
            Traceback (most recent call last):
            ...
            migrate.errors.ConfigError: rules.standardise.default_region: unknown region code 'XX'; ...
        """
        try:
            return cls.model_validate(data or {})
        except ValidationError as error:
            raise ConfigError([
                f"{'.'.join([where, *map(str, e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors()
            ]) from None

    def runs(self, rule_name: str) -> bool:
        """Whether a rule is switched on."""
        return rule_name not in self.skip


@dataclass
class Standardised:
    """Output of :func:`standardise`: the records and the values rules could not handle."""

    records: pd.DataFrame
    flags: pd.DataFrame


class _Flags:
    """Collects flags positionally (row numbers), whatever the records' index."""

    def __init__(self, keys: np.ndarray, options: StandardiseOptions):
        self.keys = keys
        self.options = options
        self.parts: list[pd.DataFrame] = []

    def add(self, reasons: pd.Series, raw: pd.Series, column: str, rule_name: str,
            rows: np.ndarray | None = None) -> None:
        """Flag where ``reasons`` is set; ``rows`` maps list elements to their record."""
        hit = reasons.notna().to_numpy()
        if not hit.any():
            return
        reason = reasons.to_numpy()[hit]
        positions = (np.arange(len(reasons)) if rows is None else rows)[hit]
        self.parts.append(pd.DataFrame({
            "record_key": self.keys[positions], "column": column, "reason": reason,
            "value": raw.to_numpy()[hit].astype(str), "rule": RULES[rule_name].code,
            "action": [getattr(self.options, r) for r in reason],
        }))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=FLAG_COLUMNS)
        return pd.concat(self.parts, ignore_index=True)


def standardise(records: pd.DataFrame, default_region: str | None = None, *,
                options: StandardiseOptions | None = None, date_order: DateOrderOption | None = None,
                today: str | None = None) -> Standardised:
    """Standardise canonical records: names, e-mails, phones (E.164), countries, dates, consent.

    Values a rule cannot handle never raise: they are reported in ``flags`` with a stable
    reason code and the action configured for it, and removed from the record unless the
    reason is a warning (:data:`KEPT_REASONS`). Adds ``name_key``, ``phone_types`` and
    ``phone_extensions`` for the matcher; ``full_name`` is parsed into the parts and dropped.
    ``default_region`` and ``date_order`` override ``options``; ``today`` pins the clock
    for birth-date plausibility.

    Raises:
        ConfigError: an unknown region code or option.

    Example:
        >>> df = pd.DataFrame({"record_key": ["crm:1"], "first_name": ["ANN"],
        ...     "emails": [["Ann@X.org"]], "phones": [["020 7946 0018"]], "country": ["UK"]})
        >>> out = standardise(df, default_region="GB").records
        >>> out[["first_name", "emails", "phones", "country", "entity"]].iloc[0].tolist()
        ['Ann', ['ann@x.org'], ['+442079460018'], 'GB', 'person']
    """
    overrides = {k: v for k, v in {"default_region": default_region, "date_order": date_order}.items() if v}
    opts = StandardiseOptions.from_config({**(options or StandardiseOptions()).model_dump(), **overrides})
    # positional inside the stage; the caller's index (maybe not unique) is put back at the end
    df = records.reset_index(drop=True)
    keys = (records["record_key"] if "record_key" in records else records.index.to_series()).astype(str).to_numpy()
    flags = _Flags(keys, opts)
    with _collector_paused():
        _names(df, opts)
        _addresses(df, flags, opts)
        _phones(df, flags, opts)
        _emails(df, flags, opts)
        _dates(df, flags, opts, today)
        _consent(df, flags, opts)
    df.index = records.index
    return Standardised(df, flags.frame())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: the stage builds millions of small lists and tuples
    (no cycles among them), and each collection would walk the whole, large heap."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _present(df: pd.DataFrame, column: str) -> pd.Series:
    return df[column].notna() if column in df else pd.Series(False, index=df.index)


def _names(df: pd.DataFrame, opts: StandardiseOptions) -> None:
    """Parts from ``full_name``, organisations recognised and moved, casing, ``entity``, ``name_key``."""
    for column in ("title", "first_name", "middle_name", "last_name", "suffix", "organization_name", "full_name"):
        if column in df:
            df[column] = clean_text(df[column])
    check_org = opts.runs("names.organization")
    org_flag = names.is_organization if check_org else (lambda s: pd.Series(False, index=s.index))
    has_parts = _present(df, "first_name") | _present(df, "last_name")
    full_is_org = pd.Series(False, index=df.index)
    if "full_name" in df and opts.runs("names.parse"):
        full = df.pop("full_name").where(~has_parts)
        full_is_org = org_flag(full)
        _fill(df, "organization_name", full.where(full_is_org))
        parts = names.parse_name(full.where(~full_is_org))
        for part in names.NAME_PARTS:
            _fill(df, part, parts[part])
    person = _person_name(df)
    person_is_org = org_flag(person) & (person != "")
    if person_is_org.any():
        # a company typed into the person's name fields: it is the organisation's name
        _fill(df, "organization_name", person.where(person_is_org))
        for part in set(names.NAME_PARTS) & set(df.columns):
            df.loc[person_is_org, part] = None
    if opts.runs("names.case"):
        for part in set(names.NAME_PARTS) & set(df.columns):
            df[part] = names.proper_case(df[part])
    declared = df["entity"].astype("string").str.strip().str.lower().isin(_ORGANIZATION_WORDS).eq(True) \
        if "entity" in df else pd.Series(False, index=df.index)
    has_person = _present(df, "first_name") | _present(df, "last_name")
    organization = declared | full_is_org | person_is_org | (_present(df, "organization_name") & ~has_person)
    df["entity"] = np.where(organization, "organization", "person")
    if opts.runs("names.key"):
        person = _person_name(df)
        org_name = df["organization_name"] if "organization_name" in df else pd.Series(None, index=df.index)
        df["name_key"] = names.name_key(person.where(~organization, org_name).astype(object)).to_numpy()


def _person_name(df: pd.DataFrame) -> pd.Series:
    """ "first last" of each record ("" where neither is known)."""
    parts = df.reindex(columns=["first_name", "last_name"]).astype("string").fillna("")
    return (parts["first_name"] + " " + parts["last_name"]).str.strip().astype(object)


def _fill(df: pd.DataFrame, column: str, values: pd.Series) -> None:
    """Fill a column's missing values (creating it if needed) without touching the given ones."""
    current = df[column] if column in df else pd.Series(None, index=df.index, dtype=object)
    df[column] = current.where(current.notna(), values).astype(object)


def _addresses(df: pd.DataFrame, flags: _Flags, opts: StandardiseOptions) -> None:
    if "region" in df:
        df["region"] = clean_text(df["region"])
    if "city" in df:
        df["city"] = names.proper_case(df["city"], place=True) if opts.runs("names.case") else clean_text(df["city"])
    if "street" in df:
        df["street"] = addresses.normalise_street(df["street"]) if opts.runs("addresses.street") \
            else clean_text(df["street"])
    if "country" in df and opts.runs("addresses.country"):
        result = addresses.country_code(df["country"])
        flags.add(result["reason"], df["country"], "country", "addresses.country")
        df["country"] = result["country"]
    if "postcode" in df and opts.runs("addresses.postcode"):
        country = df["country"] if "country" in df else pd.Series(None, index=df.index, dtype=object)
        result = addresses.normalise_postcode(df["postcode"], country)
        flags.add(result["reason"], df["postcode"], "postcode", "addresses.postcode")
        df["postcode"] = result["postcode"]


def _per_source(df: pd.DataFrame, opts: StandardiseOptions, option: str) -> pd.Series:
    """A per-source option for each row, falling back to the stage-wide one."""
    fallback = getattr(opts, option)
    if "source" not in df or not opts.sources:
        return pd.Series(fallback, index=df.index, dtype=object)
    chosen = {name: getattr(src, option) or fallback for name, src in opts.sources.items()}
    return df["source"].map(chosen).astype(object).where(df["source"].isin(chosen), fallback)


def _as_list(value: object) -> list:
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [] if pd.isna(value) else [value]


def _explode(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Record position of every list element, and the elements; a lone value is a list of one."""
    lists = [v if type(v) is list else _as_list(v) for v in column.tolist()]
    rows = np.repeat(np.arange(len(lists)), [len(v) for v in lists])
    return rows, pd.Series(list(chain.from_iterable(lists)), dtype=object)


def _regroup(rows: np.ndarray, columns: Iterable[pd.Series], size: int) -> list[list[list]]:
    """Lists per record again, missing first-column elements and repeats dropped."""
    columns = list(columns)
    frame = pd.concat(columns, axis=1, keys=range(len(columns))).assign(row=rows)
    frame = frame[frame[0].notna()].drop_duplicates(subset=["row", 0])
    # rows stay in order, so each record's elements are one slice
    ends = np.cumsum(np.bincount(frame["row"].to_numpy(), minlength=size)).tolist()
    starts = [0, *ends[:-1]]
    return [[values[a:b] for a, b in zip(starts, ends)] for values in (frame[i].tolist() for i in range(len(columns)))]


def _phones(df: pd.DataFrame, flags: _Flags, opts: StandardiseOptions) -> None:
    if "phones" not in df or not opts.runs("phones.e164"):
        return
    region = _per_source(df, opts, "default_region")
    if opts.region_from_country and "country" in df:
        region = df["country"].where(df["country"].isin(phones.SUPPORTED_REGIONS), region)
    rows, items = _explode(df["phones"])
    result = phones.to_e164(items, pd.Series(region.to_numpy()[rows], index=items.index, dtype=object))
    flags.add(result["reason"], items, "phones", "phones.e164", rows)
    numbers, kinds, extensions = _regroup(rows, (result["phone"], result["type"], result["extension"]), len(df))
    df["phones"], df["phone_types"], df["phone_extensions"] = numbers, kinds, extensions


def _emails(df: pd.DataFrame, flags: _Flags, opts: StandardiseOptions) -> None:
    if "emails" not in df or not opts.runs("emails.normalise"):
        return
    rows, items = _explode(df["emails"])
    result = emails.normalise_emails(items)
    flags.add(result["reason"], items, "emails", "emails.normalise", rows)
    if opts.runs("emails.role"):
        role = emails.is_role_email(result["email"])
        flags.add(role.map({True: "role_email", False: None}), items, "emails", "emails.role", rows)
    (df["emails"],) = _regroup(rows, (result["email"],), len(df))


def _dates(df: pd.DataFrame, flags: _Flags, opts: StandardiseOptions, today: str | None) -> None:
    """Dates per source, so each source's own data decides day-first or month-first ("auto")."""
    columns = {c: spec for c, spec in _DATE_COLUMNS.items() if c in df and opts.runs(spec[0]) and len(df)}
    keys = pd.DataFrame({"source": df["source"] if "source" in df else "",
                         "order": _per_source(df, opts, "date_order"),
                         "region": _per_source(df, opts, "default_region")}).fillna("")
    groups = keys.groupby(list(keys.columns), sort=False).indices
    for column, (rule_name, parse, value_column) in columns.items():
        result = pd.concat([
            parse(df[column].iloc[rows], order, "mdy" if region == "US" else "dmy", today)
            for (_, order, region), rows in groups.items()
        ]).reindex(df.index)
        flags.add(result["reason"], df[column], column, rule_name)
        df[column] = result[value_column]
    if "birth_date" in columns and opts.runs("dates.birth_plausible"):
        raw = df["birth_date"]
        result = dates.plausible_birth_date(raw, today)
        flags.add(result["reason"], raw, "birth_date", "dates.birth_plausible")
        df["birth_date"] = result["birth_date"]


def _consent(df: pd.DataFrame, flags: _Flags, opts: StandardiseOptions) -> None:
    if not opts.runs("consent.boolean"):
        return
    for column, meaning in (("email_opt_in", "opt_in"), ("do_not_contact", "do_not_contact")):
        if column in df:
            result = consent.to_bool(df[column], meaning)
            flags.add(result["reason"], df[column], column, "consent.boolean")
            df[column] = result["value"].astype("boolean")
