"""A migration project: a folder with migration.yaml, checked before any work starts."""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from connectors import Source, source_class, source_kinds
from connectors.base import SOURCE_REF
from mappings import GOLDEN_ATTRIBUTES, MappingSpec, mapping_path
from migrate.config import (ProjectConfig, Secrets, SourcePriority, parse_config, sort_problems,
                            validation_problems)
from migrate.errors import ConfigError, MigrateError
from migrate.workspace import Workspace
from migrate.yamlsource import LocatedYaml, load_yaml

CONFIG_FILE = "migration.yaml"

#: Names a phase predicate may use besides golden attributes.
PHASE_NAMES = ("source", "sources", "golden_id")


@dataclass
class Project:
    """A loaded, validated migration project.

    Example:
        >>> Project.load("examples/minimal").config.target.schema_
        'reference'
    """

    dir: Path
    config: ProjectConfig
    secrets: Secrets
    located: LocatedYaml
    mappings: dict[str, MappingSpec] = field(default_factory=dict)
    _workspace: Workspace | None = None

    @classmethod
    def load(cls, path: str | Path = ".") -> Project:
        """Load ``path`` (a folder holding migration.yaml, or the file itself) and check it all.

        Every problem (unknown key, wrong type, unknown connector, missing file, dangling
        mapping reference, undefined ``${VAR}``...) is collected into one ConfigError.
        """
        path = Path(path).expanduser()
        config_path = path / CONFIG_FILE if path.is_dir() else path
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: no migration project here (create one with `crm-migrate init DIR`)")
        located = load_yaml(config_path)
        secrets = Secrets()
        config, data, problems = parse_config(located, secrets)
        project = cls(config_path.parent.resolve(), config, secrets, located)  # type: ignore[arg-type]
        sources = data.get("sources")
        if isinstance(sources, dict):
            for name, spec in sources.items():
                problems += project._check_source(name, spec)
        if config is not None:
            problems += project._check_survive()
            problems += project._check_phases()
        if problems:
            raise ConfigError(sort_problems(problems))
        return project

    # -- checks -------------------------------------------------------------------------------------
    def _check_source(self, name: str, spec: dict) -> list[str]:
        loc = ("sources", name)
        if not isinstance(spec, dict):
            return [f"{self.located.where(loc)}: sources.{name}: expected a mapping of options (found {spec!r})"]
        kind = spec.get("connector")
        if kind is None:
            return [f"{self.located.where(loc)}: sources.{name}.connector: required key is missing "
                    f"(one of: {', '.join(source_kinds())})"]
        if kind not in source_kinds():
            hint = difflib.get_close_matches(str(kind), source_kinds(), n=1)
            return [f"{self.located.where(loc + ('connector',))}: sources.{name}.connector: unknown connector "
                    f"{kind!r}" + (f"; did you mean {hint[0]!r}?" if hint else f"; expected one of: "
                                   f"{', '.join(source_kinds())}")]
        cls = source_class(kind)
        try:
            options = cls.Options.model_validate(spec)
        except ValidationError as exc:
            return validation_problems(exc, self.located, loc, model=cls.Options)
        problems = []
        for option in cls.path_options:
            value = getattr(options, option, None)
            if value and not self._resolve(value).exists():
                problems.append(f"{self.located.where(loc + (option,))}: sources.{name}.{option}: "
                                f"file not found: {self._resolve(value)}")
        if options.mapping is None:
            problems.append(f"{self.located.where(loc)}: sources.{name}.mapping: required key is missing "
                            "(a bundled template name or a mapping YAML file)")
        else:
            problems += self._load_mapping(name, options.mapping)
        return problems

    def _load_mapping(self, source: str, ref: str) -> list[str]:
        loc = ("sources", source, "mapping")
        path = mapping_path(ref, self.dir)
        if path is None:
            from mappings import template_names

            hint = difflib.get_close_matches(ref, template_names(), n=1)
            return [f"{self.located.where(loc)}: sources.{source}.mapping: {ref!r} is neither a bundled template "
                    f"nor a file" + (f"; did you mean {hint[0]!r}?" if hint else
                                     f" (templates: {', '.join(template_names())})")]
        try:
            located = load_yaml(path)
        except ConfigError as exc:
            return exc.problems
        try:
            self.mappings[source] = MappingSpec.model_validate(located.data or {})
        except ValidationError as exc:
            return validation_problems(exc, located, model=MappingSpec)
        return []

    def _check_survive(self) -> list[str]:
        problems = []
        survive = self.config.rules.survive
        for attribute in ("default", *GOLDEN_ATTRIBUTES):
            rules = getattr(survive, attribute, None) or []
            for i, rule in enumerate(rules):
                if isinstance(rule, SourcePriority):
                    for j, src in enumerate(rule.source_priority):
                        if src not in self.config.sources:
                            loc = ("rules", "survive", attribute, i, "source_priority", j)
                            problems.append(f"{self.located.where(loc)}: rules.survive.{attribute}: source_priority "
                                            f"names {src!r}, which is not a source (sources: "
                                            f"{', '.join(self.config.sources)})")
        return problems

    def _check_phases(self) -> list[str]:
        problems = []
        names = [p.name for p in self.config.phases]
        allowed = set(GOLDEN_ATTRIBUTES) | set(PHASE_NAMES)
        for i, phase in enumerate(self.config.phases):
            loc = ("phases", i)
            if names.count(phase.name) > 1:
                problems.append(f"{self.located.where(loc + ('name',))}: phases[{i}].name: {phase.name!r} is used twice")
            if phase.where is None:
                if i != len(self.config.phases) - 1:
                    problems.append(f"{self.located.where(loc)}: phases[{i}]: only the last phase may omit 'where' "
                                    "(it takes every golden record the earlier phases did not)")
                continue
            try:
                tree = ast.parse(phase.where, mode="eval")
            except SyntaxError as exc:
                problems.append(f"{self.located.where(loc + ('where',))}: phases[{i}].where: not a valid predicate "
                                f"({exc.msg}) (found {phase.where!r})")
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in allowed:
                    hint = difflib.get_close_matches(node.id, sorted(allowed), n=1)
                    problems.append(f"{self.located.where(loc + ('where',))}: phases[{i}].where: unknown field "
                                    f"{node.id!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        return problems

    # -- access -------------------------------------------------------------------------------------
    def _resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.dir / p

    @property
    def state_dir(self) -> Path:
        """``.crm-migrate/`` in the project folder: logs, reports, the default workspace."""
        return self.dir / ".crm-migrate"

    def workspace(self) -> Workspace:
        """The project's workspace (created on first use)."""
        if self._workspace is None:
            self._workspace = Workspace(self.config.workspace, self.dir)
        return self._workspace

    def source(self, name: str) -> Source:
        """Open one source by name."""
        spec = self.config.sources[name]
        cls = source_class(spec["connector"])
        return cls(name, cls.Options.model_validate(spec), self.dir)

    def config_hash(self) -> str:
        """A fingerprint of the validated config (secrets excluded)."""
        text = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(self.secrets.redact(text).encode()).hexdigest()[:16]

    def preflight(self) -> None:
        """Open every source and check its mapping against its real columns; all problems at once."""
        problems = []
        for name in self.config.sources:
            source = self.source(name)
            if source.columns_vary:
                continue
            try:
                columns = set(source.columns())
            except MigrateError as exc:
                problems.append(f"source {name!r}: {exc}")
                continue
            mapping = self.mappings[name]
            ref = self.config.sources[name].get("mapping")
            for column in mapping.source_columns():
                if column not in columns:
                    hint = difflib.get_close_matches(column, sorted(columns - {SOURCE_REF}), n=1)
                    problems.append(
                        f"source {name!r} ({source.describe()}): mapping {ref!r} reads column {column!r}, which the "
                        f"source does not have" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        if problems:
            raise ConfigError(problems)
