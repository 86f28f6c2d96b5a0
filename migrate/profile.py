"""Profile the raw sources before migrating them: fill rates, shapes, invalid values, duplicate ids.

Reads the sources through the same connectors, mapping, standardisation and validation as a
run, but writes nothing to the workspace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from connectors.base import SOURCE_REF
from mappings import apply_mapping
from migrate import charts
from migrate.progress import progress
from migrate.project import Project
from rules.standardise import standardise
from rules.validate import validate

#: Distinct values tracked exactly per column; past this the count is a lower bound.
DISTINCT_CAP = 200_000
TOP = 10


@dataclass
class _Column:
    filled: int = 0
    values: Counter = field(default_factory=Counter)
    shapes: Counter = field(default_factory=Counter)
    capped: bool = False


def shape(values: pd.Series) -> pd.Series:
    """The pattern of each value: runs of upper-case letters become ``A``, lower-case ``a``, digits ``9``.

    Example:
        >>> shape(pd.Series(["SW1A 1AA", "020 7946 0018", "ann@x.org"])).tolist()
        ['A9A 9A', '9 9 9', 'a@a.a']
    """
    s = values.astype(str)
    s = s.str.replace(r"[^\W\d_a-z]+", "A", regex=True)  # letters that are not lower-case ASCII: mostly upper
    s = s.str.replace(r"[a-z]+", "a", regex=True)
    s = s.str.replace(r"[0-9]+", "9", regex=True)
    return s.str.replace(r"A(?:a)+", "Aa", regex=True)


def profile_source(project: Project, name: str) -> dict[str, Any]:
    """Profile one source: per column fill rate, distinct count, top values and shapes; rule failures."""
    source = project.source(name)
    mapping = project.mappings[name]
    columns: dict[str, _Column] = {}
    rows = 0
    rejects: Counter = Counter()
    flags: Counter = Counter()
    failures: Counter = Counter()
    seen_ids: set[str] = set()
    duplicate_ids = 0
    with progress(f"profile {name}", source.estimate_rows()) as advance:
        for chunk in source.chunks(project.config.chunk_size):
            raw = chunk.rows.drop(columns=[SOURCE_REF])
            rows += chunk.count
            rejects.update(chunk.rejects["reason"])
            for col in raw.columns:
                stats = columns.setdefault(col, _Column())
                values = raw[col].astype("string").str.strip()
                values = values[values.notna() & (values != "")]
                stats.filled += len(values)
                stats.shapes.update(shape(values).value_counts().to_dict())
                if not stats.capped:
                    stats.values.update(values.value_counts().to_dict())
                    if len(stats.values) > DISTINCT_CAP:
                        stats.capped = True
            mapped = apply_mapping(chunk.rows, mapping, name)
            dup = mapped["record_key"].duplicated() | mapped["record_key"].isin(seen_ids)
            duplicate_ids += int(dup.sum())
            seen_ids.update(mapped["record_key"])
            std = standardise(mapped[~dup], default_region=source.options.default_region,
                              options=project.config.rules.standardise)
            flags.update(f"{r.column}:{r.reason}" for r in std.flags.itertuples(index=False))
            failures.update(validate(std.records, std.flags).quarantine["reason"])
            advance(chunk.count)
    return {
        "source": name, "connector": source.describe(), "rows": rows, "unreadable_rows": dict(rejects),
        "duplicate_source_ids": duplicate_ids, "rule_flags": dict(flags), "would_quarantine": dict(failures),
        "columns": {
            col: {
                "fill_rate": round(s.filled / rows, 4) if rows else 0.0,
                "distinct": len(s.values), "distinct_is_lower_bound": s.capped,
                "top_values": [[v, int(n)] for v, n in s.values.most_common(TOP)],
                "shapes": [[v, int(n)] for v, n in s.shapes.most_common(TOP)],
            } for col, s in columns.items()
        },
    }


def profile(project: Project, sources: list[str] | None = None) -> dict[str, Any]:
    """Profile the named sources (all by default) without writing the workspace."""
    names = sources or list(project.config.sources)
    unknown = [n for n in names if n not in project.config.sources]
    if unknown:
        from migrate.errors import ConfigError

        raise ConfigError(f"unknown source(s) {', '.join(unknown)} (sources: {', '.join(project.config.sources)})")
    return {"sources": {n: profile_source(project, n) for n in names}}


def profile_html(data: dict[str, Any]) -> str:
    """The profile as one self-contained HTML page: a fill-rate bar per column, top values and shapes."""
    from html import escape

    parts = []
    for name, src in data["sources"].items():
        rows = []
        for col, c in src["columns"].items():
            pct = c["fill_rate"] * 100
            top = ", ".join(f"{escape(str(v))} ({n:,})" for v, n in c["top_values"][:5])
            shapes = ", ".join(f"<code>{escape(str(v))}</code> ({n:,})" for v, n in c["shapes"][:3])
            rows.append(f"<tr><th>{escape(col)}</th><td><div class='bar'><span style='width:{pct:.1f}%'></span>"
                        f"</div>{pct:.1f}%</td><td>{c['distinct']:,}{'+' if c['distinct_is_lower_bound'] else ''}"
                        f"</td><td>{top}</td><td>{shapes}</td></tr>")
        problems = {**{f"unreadable: {k}": v for k, v in src["unreadable_rows"].items()},
                    **{f"would quarantine: {k}": v for k, v in src["would_quarantine"].items()},
                    **{f"flag {k}": v for k, v in src["rule_flags"].items()}}
        if src["duplicate_source_ids"]:
            problems["duplicate source ids"] = src["duplicate_source_ids"]
        worst = max(problems.values(), default=1)
        problem_rows = "".join(
            f"<tr><th>{escape(k)}</th><td><div class='bar bad'><span style='width:{100 * v / worst:.1f}%'></span>"
            f"</div>{v:,}</td></tr>" for k, v in sorted(problems.items(), key=lambda kv: -kv[1]))
        parts.append(f"<section><h2>{escape(name)} <small>{escape(src['connector'])} · {src['rows']:,} rows</small>"
                     f"</h2><h3>Problems</h3><table>{problem_rows or '<tr><td>none found</td></tr>'}</table>"
                     f"<h3>Columns</h3><table><tr><th>column</th><th>filled</th><th>distinct</th><th>top values</th>"
                     f"<th>shapes</th></tr>{''.join(rows)}</table></section>")
    return charts.page("Source profile", "".join(parts),
                       subtitle="The raw sources as read, before anything is migrated.")
