"""migration.yaml as validated pydantic models.

Every problem is collected and reported together before any work starts, each naming the
file, line, key path, the value found and what was expected (a :class:`ConfigError`).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)
from typing_extensions import Annotated

from mappings.canonical import CANONICAL_FIELDS, GOLDEN_ATTRIBUTES, LIST_FIELDS
from migrate.errors import ConfigError
from migrate.yamlsource import LocatedYaml, Loc
from rules.match.settings import MatchSettings
from rules.standardise import StandardiseOptions

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_WORKSPACE = "sqlite:///.crm-migrate/workspace.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeterministicMatch(_Strict):
    """Deterministic matching: records sharing all fields of any one rule are the same customer."""

    deterministic: list[list[str]] = Field(
        default_factory=lambda: [["emails"], ["phones"], ["first_name", "last_name", "birth_date"]])

    @field_validator("deterministic")
    @classmethod
    def _known_fields(cls, rules: list[list[str]]) -> list[list[str]]:
        allowed = ("emails", "phones", "first_name", "last_name", "birth_date", "organization_name",
                   "postcode", "street", "city", "country", "name_key")
        for rule in rules:
            for f in rule:
                if f not in allowed:
                    hint = difflib.get_close_matches(f, allowed, n=1)
                    raise ValueError(f"unknown match field {f!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        return rules


SURVIVE_RULE_NAMES = (
    "most_recent", "most_frequent", "most_complete", "longest", "non_null", "most_restrictive", "union")
SurviveRuleName = Literal[
    "most_recent", "most_frequent", "most_complete", "longest", "non_null", "most_restrictive", "union"]


class SourcePriority(_Strict):
    """Trust sources in this order (first wins)."""

    source_priority: list[str]


SurviveRule = Union[SurviveRuleName, SourcePriority]


def _survive_rules(value: Any) -> Any:
    """Accept one rule or a list; name the bad rule with a "did you mean" instead of union noise."""
    rules = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, str) and rule not in SURVIVE_RULE_NAMES:
            hint = difflib.get_close_matches(rule, SURVIVE_RULE_NAMES, n=1)
            raise ValueError(f"unknown survivorship rule {rule!r}" + (
                f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(SURVIVE_RULE_NAMES)}"))
        if isinstance(rule, dict) and set(rule) != {"source_priority"}:
            raise ValueError(f"expected {{source_priority: [source, ...]}}, found keys {sorted(rule)}")
        if not isinstance(rule, (str, dict)):
            raise ValueError(f"expected a rule name or {{source_priority: [...]}}, found {rule!r}")
    return rules


SurviveRules = Annotated[list[SurviveRule], BeforeValidator(_survive_rules)]

_SurviveBase = create_model(  # one optional key per golden attribute, so typos get a "did you mean"
    "_SurviveBase",
    __base__=_Strict,
    **{attr: (SurviveRules | None, None) for attr in GOLDEN_ATTRIBUTES},
)


class SurviveConfig(_SurviveBase):  # type: ignore[misc, valid-type]
    """Per-attribute survivorship: ``default`` applies where an attribute has no rules of its own."""

    default: SurviveRules = Field(default_factory=lambda: ["most_recent"])

    @field_validator(*GOLDEN_ATTRIBUTES)
    @classmethod
    def _rules_fit_the_attribute(cls, rules: list | None, info: ValidationInfo) -> list | None:
        """``union`` gathers list values and ``most_restrictive`` ranks consent flags; elsewhere they mean nothing."""
        names = {r for r in rules or [] if isinstance(r, str)}
        if "union" in names and info.field_name not in LIST_FIELDS:
            raise ValueError(f"union gathers the values of list attributes ({', '.join(LIST_FIELDS)}), "
                             f"not of {info.field_name}")
        consent = [f for f, kind in CANONICAL_FIELDS.items() if kind == "bool"]
        if "most_restrictive" in names and info.field_name not in consent:
            raise ValueError(f"most_restrictive ranks consent ({', '.join(consent)}), not {info.field_name}")
        return rules

    def rules_for(self, attribute: str) -> list[SurviveRule]:
        """The ordered rules deciding one golden attribute."""
        rules = getattr(self, attribute, None)
        return list(self.default if rules is None else rules)


def _match_kind(data: Any) -> str:
    """``blocking``/``compare`` make the probabilistic matcher; otherwise deterministic rules."""
    if isinstance(data, dict):
        return "probabilistic" if {"blocking", "compare"} & set(data) else "deterministic"
    return "probabilistic" if isinstance(data, MatchSettings) else "deterministic"


MatchConfig = Annotated[
    Union[Annotated[DeterministicMatch, Tag("deterministic")], Annotated[MatchSettings, Tag("probabilistic")]],
    Discriminator(_match_kind),
]


class RulesConfig(_Strict):
    """The ``rules:`` section."""

    standardise: StandardiseOptions = Field(default_factory=StandardiseOptions)
    match: MatchConfig = Field(default_factory=DeterministicMatch)
    survive: SurviveConfig = Field(default_factory=SurviveConfig)


class TargetConfig(_Strict):
    """The new CRM: a database (``kind: sql``) or an import-file export for a CRM's own import tool.

    ``sql`` needs ``url`` and loads the reference schema, or an existing schema through a
    target ``mapping`` (YAML). ``salesforce_csv`` and ``hubspot_csv`` write CSV files into
    ``path``; ``external_id_field`` names the CRM's external id field (default
    ``External_Id__c`` for Salesforce, ``legacy_id`` for HubSpot).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: Literal["sql", "salesforce_csv", "hubspot_csv"] = "sql"
    url: str | None = None
    schema_: Literal["reference"] = Field("reference", alias="schema")
    mapping: str | None = None
    path: str | None = None
    external_id_field: str | None = None
    batch_size: int = Field(5_000, gt=0)

    @model_validator(mode="after")
    def _where_to(self) -> TargetConfig:
        if self.kind == "sql" and not self.url:
            raise ValueError("a sql target needs 'url' (a SQLAlchemy URL such as postgresql://user@host/crm)")
        if self.kind != "sql" and not self.path:
            raise ValueError(f"a {self.kind} target needs 'path' (the folder the import files are written to)")
        return self


class PhaseConfig(_Strict):
    """A wave of the load: golden records matching ``where`` (all the rest when omitted)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    where: str | None = None


class ProjectConfig(_Strict):
    """The whole migration.yaml."""

    workspace: str = DEFAULT_WORKSPACE
    chunk_size: int = Field(50_000, gt=0)
    sources: dict[str, dict[str, Any]]
    rules: RulesConfig = Field(default_factory=RulesConfig)
    target: TargetConfig
    phases: list[PhaseConfig] = Field(default_factory=lambda: [PhaseConfig(name="all")])


class Secrets:
    """Values that came from ``${VAR}``; never printed, logged or written to a report.

    Every value is also remembered for the whole process, so the CLI's last-resort error
    printer redacts them even when the error escaped the project that knew them.
    """

    seen: set[str] = set()

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str) -> None:
        """Remember a secret value."""
        self.values.add(value)
        Secrets.seen.add(value)

    def redact(self, text: str) -> str:
        """Replace every secret value in ``text`` with ``***``."""
        return redact(text, self.values)


def redact(text: str, values: set[str] | None = None) -> str:
    """Replace secret values (by default every one seen in this process) with ``***``."""
    for value in sorted(Secrets.seen if values is None else values, key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text


def expand_env(data: Any, located: LocatedYaml, secrets: Secrets, problems: list[str], loc: Loc = ()) -> Any:
    """Substitute ``${NAME}`` from the environment; an undefined variable is a problem."""
    if isinstance(data, dict):
        return {k: expand_env(v, located, secrets, problems, loc + (k,)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, located, secrets, problems, loc + (i,)) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                problems.append(f"{located.where(loc)}: {_dotted(loc)}: environment variable ${{{name}}} is not set")
                return ""
            secrets.add(os.environ[name])
            return os.environ[name]

        return _ENV.sub(sub, data)
    return data


def validation_problems(exc: ValidationError, located: LocatedYaml, prefix: Loc = (),
                        model: type[BaseModel] | None = None) -> list[str]:
    """Turn pydantic errors into one line each: ``file:line: key.path: message (found ...)``."""
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not _is_union_tag(p))
        found = err.get("input")
        if err["type"] == "extra_forbidden":
            options = _field_names_at(model, tuple(p for p in err["loc"] if not _is_union_tag(p))[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), options, n=1) if options else []
            msg = f"unknown key {loc[-1]!r}" + (
                f"; did you mean {hint[0]!r}?" if hint else (f"; expected one of: {', '.join(options)}" if options else ""))
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if not isinstance(found, (dict, list)):
                msg += f" (found {found!r})"
        problems.append(f"{located.where(loc)}: {_dotted(loc)}: {msg}")
    return problems


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member's name ("list[...]", "SourcePriority") to a loc.
    return isinstance(part, str) and (part in {"SourcePriority", "str", "deterministic", "probabilistic"}
                                      or "[" in part or part.startswith("literal"))


def _field_names_at(model: type[BaseModel] | None, loc: Loc) -> list[str]:
    """The keys a model accepts at a nested path, for "did you mean" hints."""
    current: Any = model
    for part in loc:
        if current is None or not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _dotted(loc: Loc) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return text or "(top level)"


def parse_config(located: LocatedYaml, secrets: Secrets) -> tuple[ProjectConfig | None, dict, list[str]]:
    """Validate a loaded migration.yaml.

    Returns the config (None when invalid), the data with ``${VAR}`` expanded (so later
    checks can still look at the parts that are fine), and every problem found.
    """
    problems: list[str] = []
    if not isinstance(located.data, dict):
        return None, {}, [f"{located.path}: expected a mapping of keys (workspace, sources, target...)"]
    data = expand_env(located.data, located, secrets, problems)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, located, model=ProjectConfig))
        config = None
    return config, data, problems


def sort_problems(problems: list[str]) -> list[str]:
    """Problems in file and line order, duplicates dropped."""
    def key(p: str) -> tuple[str, int]:
        m = re.match(r"^(.*?):(\d+):", p)
        return (m.group(1), int(m.group(2))) if m else (p, 0)

    return sorted(dict.fromkeys(problems), key=key)
