"""Reconciliation reports: JSON for jobs, Markdown and HTML for people."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

COLUMNS = ("in", "quarantined", "merged", "loaded", "pending")


def write_reports(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Write reconciliation.json, .md and .html into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "reconciliation.json", "md": folder / "reconciliation.md",
             "html": folder / "reconciliation.html"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    paths["md"].write_text(to_markdown(report), encoding="utf-8")
    paths["html"].write_text(to_html(report), encoding="utf-8")
    return paths


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [*report["sources"].items(), ("total", report["total"])]


def to_markdown(report: dict[str, Any]) -> str:
    """The reconciliation as a Markdown document."""
    verdict = "holds" if report["holds"] else "DOES NOT HOLD"
    lines = ["# Reconciliation", "", f"`in = loaded + merged + quarantined` **{verdict}**.", "",
             "| source | " + " | ".join(COLUMNS) + " | holds |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, row in _rows(report):
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:,}" for c in COLUMNS) + f" | {'yes' if row['holds'] else 'NO'} |")
    lines += ["", "## Phases", "", "| phase | golden | loaded | pending |", "|---|---|---|---|"]
    for name, p in report["phases"].items():
        lines.append(f"| {name} | {p['golden']:,} | {p['loaded']:,} | {p['pending']:,} |")
    if report.get("quarantine_reasons"):
        lines += ["", "## Quarantine reasons", "", "| source | reason | rows |", "|---|---|---|"]
        for source, reasons in report["quarantine_reasons"].items():
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
                lines.append(f"| {source} | `{reason}` | {n:,} |")
    if report.get("read_back"):
        lines += ["", "## Read-back from the target", "", "| entity | ledger | target | holds |", "|---|---|---|---|"]
        for entity, c in report["read_back"].items():
            lines.append(f"| {entity} | {c['expected']:,} | {c['found']:,} | {'yes' if c['holds'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def to_html(report: dict[str, Any]) -> str:
    """The reconciliation as one self-contained HTML page."""
    def cell(v: Any) -> str:
        return f"<td>{v:,}</td>" if isinstance(v, int) and not isinstance(v, bool) else f"<td>{html.escape(str(v))}</td>"

    rows = "".join(
        f"<tr class='{'ok' if r['holds'] else 'bad'}'><th>{html.escape(n)}</th>"
        + "".join(cell(r[c]) for c in COLUMNS) + f"<td>{'yes' if r['holds'] else 'NO'}</td></tr>"
        for n, r in _rows(report))
    verdict = "holds" if report["holds"] else "does NOT hold"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reconciliation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .7rem;text-align:right}}th{{text-align:left}}
tr.bad{{background:#fdd}}tr.ok td:last-child{{color:#070}}</style></head><body>
<h1>Reconciliation</h1><p><code>in = loaded + merged + quarantined</code> <strong>{verdict}</strong>.</p>
<table><tr><th>source</th>{''.join(f'<th>{c}</th>' for c in COLUMNS)}<th>holds</th></tr>{rows}</table>
</body></html>
"""
