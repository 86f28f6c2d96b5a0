"""The ``rules.match`` settings of migration.yaml: blocking rules, comparisons, thresholds, guards.

Everything a user can get wrong is caught here, before any work starts, with the key path:
a blocking rule on an unknown field, a comparison that cannot compare its field, a threshold
outside 0..1.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mappings.canonical import CANONICAL_FIELDS
from migrate.errors import ConfigError

#: Comparison kinds and the field kinds (from the canonical contract) each can compare.
COMPARISON_KINDS: dict[str, frozenset[str]] = {
    "name": frozenset({"name", "org", "text"}),
    "email": frozenset({"email_list"}),
    "phone": frozenset({"phone_list"}),
    "date": frozenset({"date", "datetime"}),
    "postcode": frozenset({"postcode", "text"}),
    "address": frozenset({"text", "org"}),
    "identifier": frozenset({"identifier", "key", "text"}),
    "string": frozenset({"name", "org", "text", "postcode", "country", "identifier"}),
    "exact": frozenset({"name", "org", "text", "postcode", "country", "identifier", "key", "entity", "date",
                        "email_list", "phone_list", "bool"}),
}

#: Default similarity thresholds (0..1, best first) of the fuzzy levels of each kind.
DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "name": (0.92, 0.80), "email": (0.88,), "address": (0.90, 0.70), "string": (0.92, 0.80),
}

#: A level pattern packs four bits per comparison into one int64 (see rules.match.model.Patterns).
MAX_COMPARISONS = 15

#: Blocking functions: ``name(field)`` or ``name(field, n)``.
BLOCKING_FUNCTIONS: dict[str, bool] = {  # name -> takes a length argument
    "first": True, "last": True, "phonetic": False, "translit": False, "year": False,
    "local": False, "domain": False,
}
_TERM = re.compile(r"^\s*(?:(?P<func>\w+)\(\s*(?P<field>[\w.]+)\s*(?:,\s*(?P<n>\d+)\s*)?\)|(?P<plain>[\w.]+))\s*$")

#: Aliases that name the primary element of a list field.
FIELD_ALIASES: dict[str, str] = {"email": "emails", "phone": "phones"}


def field_kind(field: str) -> str | None:
    """The canonical kind of a field a rule may name (``identifiers.vat`` is an identifier)."""
    if field.startswith("identifiers.") and len(field) > len("identifiers."):
        return "identifier"
    if field == "name_key":
        return "name"
    return CANONICAL_FIELDS.get(FIELD_ALIASES.get(field, field))


class BlockingTerm(BaseModel):
    """One term of a blocking rule: a field, optionally through a function."""

    model_config = ConfigDict(frozen=True)

    field: str
    function: str | None = None
    n: int | None = None

    @classmethod
    def parse(cls, text: str) -> BlockingTerm:
        """Parse ``last_name``, ``first(last_name, 3)`` or ``phonetic(first_name)``; ValueError if invalid."""
        match = _TERM.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a field or function(field[, n])")
        if match["plain"]:
            return cls(field=match["plain"])
        func, n = match["func"], match["n"]
        if func not in BLOCKING_FUNCTIONS:
            raise ValueError(f"unknown blocking function {func!r}; expected one of {sorted(BLOCKING_FUNCTIONS)}")
        if BLOCKING_FUNCTIONS[func] != (n is not None):
            raise ValueError(f"{func}() takes {'a field and a length' if BLOCKING_FUNCTIONS[func] else 'one field'}")
        return cls(field=match["field"], function=func, n=int(n) if n else None)

    def __str__(self) -> str:
        if self.function is None:
            return self.field
        return f"{self.function}({self.field}{f', {self.n}' if self.n is not None else ''})"


class ComparisonSpec(BaseModel):
    """How one field is compared: its kind and, for fuzzy kinds, similarity thresholds."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["name", "email", "phone", "date", "postcode", "address", "identifier", "string", "exact"]
    field: str | None = None
    thresholds: list[float] | None = None
    tf: bool | None = None
    swap_with: str | None = None


class Thresholds(BaseModel):
    """Match probabilities at which a pair links, and from which it goes to review."""

    model_config = ConfigDict(extra="forbid")

    link: float = Field(0.95, ge=0.0, le=1.0)
    review: float = Field(0.60, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.link:
            raise ValueError(f"review ({self.review}) must not exceed link ({self.link})")
        return self


class Comparison(BaseModel):
    """A resolved comparison: its name in ``compare``, a column-safe id, and its spec."""

    model_config = ConfigDict(frozen=True)

    name: str
    id: str
    kind: str
    field: str
    thresholds: tuple[float, ...] = ()
    tf: bool = False
    swap_with: str | None = None


class MatchSettings(BaseModel):
    """Settings of the match stage (``rules.match`` in migration.yaml).

    Example:
        >>> s = MatchSettings.model_validate({"blocking": [["last_name", "postcode"], ["email"]],
        ...     "compare": {"first_name": "name", "last_name": "name", "email": "email"}})
        >>> [str(t) for t in s.blocking_rules()[0]], s.thresholds.link
        (['last_name', 'postcode'], 0.95)
    """

    model_config = ConfigDict(extra="forbid")

    blocking: list[list[str]] = Field(min_length=1)
    compare: dict[str, str | ComparisonSpec] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    #: A connected component larger than this is not merged automatically but held for review.
    max_cluster_size: int = Field(50, ge=2)
    #: Blocks with more records are skipped (and reported): a placeholder value shared by
    #: thousands of records would otherwise explode into millions of useless pairs.
    max_block_size: int = Field(5_000, ge=2)
    #: Fields whose shared non-null value links two records outright.
    strong_identifiers: list[str] = []
    #: Comparisons whose values, present on both sides and dissimilar, forbid a link.
    guards: list[str] = []
    link_type: Literal["dedupe", "link_only"] = "dedupe"
    u_sample_pairs: int = Field(300_000, ge=1_000)
    chunk_pairs: int = Field(100_000, ge=1_000)
    em_max_iterations: int = Field(40, ge=1)
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _problems(cls, data: Any) -> Any:
        if isinstance(data, dict):
            problems = _check(data)
            if problems:
                raise ValueError("; ".join(problems))
        return data

    @classmethod
    def from_config(cls, data: dict[str, Any], key: str = "rules.match") -> MatchSettings:
        """Validate a config mapping; every problem becomes a :class:`ConfigError` line naming its key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                if loc:
                    problems.append(f"{key}.{loc}: {message}")
                else:
                    problems.extend(f"{key}.{p}" for p in message.split("; "))
            raise ConfigError(problems) from None

    def blocking_rules(self) -> list[tuple[BlockingTerm, ...]]:
        """The blocking rules, parsed; identifier rules come first so they are never filtered away."""
        rules = [(BlockingTerm(field=f),) for f in self.strong_identifiers]
        rules += [tuple(BlockingTerm.parse(t) for t in rule) for rule in self.blocking]
        return list(dict.fromkeys(rules))

    def comparisons(self) -> list[Comparison]:
        """The comparisons, resolved with their defaults."""
        out = []
        for name, raw in self.compare.items():
            spec = ComparisonSpec(kind=raw) if isinstance(raw, str) else raw
            field = FIELD_ALIASES.get(spec.field or name, spec.field or name)
            swap = spec.swap_with
            if spec.kind == "name" and swap is None:
                swap = {"first_name": "last_name", "last_name": "first_name"}.get(field)
            out.append(Comparison(
                name=name, id=re.sub(r"\W", "_", name), kind=spec.kind, field=field,
                thresholds=tuple(spec.thresholds or DEFAULT_THRESHOLDS.get(spec.kind, ())),
                tf=spec.tf if spec.tf is not None else spec.kind == "name",
                swap_with=swap,
            ))
        return out


def _check(data: dict[str, Any]) -> list[str]:
    """Problems pydantic's types cannot see: unknown fields, impossible comparisons."""
    problems: list[str] = []
    for i, rule in enumerate(data.get("blocking") or []):
        for j, term in enumerate(rule if isinstance(rule, list) else []):
            try:
                parsed = BlockingTerm.parse(str(term))
            except ValueError as exc:
                problems.append(f"blocking.{i}.{j}: {exc}")
                continue
            if field_kind(parsed.field) is None:
                problems.append(f"blocking.{i}.{j}: unknown field {parsed.field!r}")
    compare = data.get("compare") or {}
    if isinstance(compare, dict) and len(compare) > MAX_COMPARISONS:
        problems.append(f"compare: at most {MAX_COMPARISONS} comparisons (found {len(compare)})")
    for name, raw in compare.items() if isinstance(compare, dict) else []:
        spec = raw if isinstance(raw, dict) else {"kind": raw}
        kind, field = spec.get("kind"), spec.get("field") or name
        if kind not in COMPARISON_KINDS:
            problems.append(f"compare.{name}: unknown comparison kind {kind!r}; expected one of "
                            f"{sorted(COMPARISON_KINDS)}")
            continue
        fkind = field_kind(field)
        if fkind is None:
            problems.append(f"compare.{name}: unknown field {field!r}")
        elif fkind not in COMPARISON_KINDS[kind]:
            problems.append(f"compare.{name}: a {kind!r} comparison cannot compare {field!r} (a {fkind} field)")
        thresholds = spec.get("thresholds")
        if thresholds is not None:
            if kind not in DEFAULT_THRESHOLDS:
                problems.append(f"compare.{name}.thresholds: a {kind!r} comparison has no similarity thresholds")
            elif not isinstance(thresholds, list) or not 0 < len(thresholds) <= 4 or not all(
                    isinstance(t, (int, float)) and 0 <= t <= 1 for t in thresholds):
                problems.append(f"compare.{name}.thresholds: expected one to four numbers between 0 and 1")
        if spec.get("swap_with") is not None and (kind != "name" or field_kind(spec["swap_with"]) != "name"):
            problems.append(f"compare.{name}.swap_with: only a name comparison can swap, with another name field")
        if spec.get("tf") and kind not in ("name", "string", "exact"):
            problems.append(f"compare.{name}.tf: term frequencies apply to name, string and exact comparisons")
    for i, field in enumerate(data.get("strong_identifiers") or []):
        if field_kind(str(field)) is None:
            problems.append(f"strong_identifiers.{i}: unknown field {field!r}")
    for i, guard in enumerate(data.get("guards") or []):
        if guard not in compare:
            problems.append(f"guards.{i}: {guard!r} is not one of the comparisons in compare")
    return problems
