"""Reconciliation reports: JSON for jobs, Markdown for people, and a self-contained HTML page with charts."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from migrate import charts
from migrate.project import Project
from migrate.workspace import Workspace, id_map, load_results, pairs, xref

COLUMNS = ("in", "quarantined", "merged", "loaded", "pending")
#: Segments of the per-source funnel, in bar order.
FUNNEL = ("loaded", "merged", "quarantined", "pending")
#: Bins of the match weight histogram.
WEIGHT_BINS = 30
#: Cluster sizes shown one by one; larger ones share the last column.
LARGEST_SIZE_SHOWN = 10


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
    lines += _golden_markdown(report)
    return "\n".join(lines) + "\n"


def _golden_markdown(report: dict[str, Any]) -> list[str]:
    """Golden records: cluster sizes, merges and conflicts per source, the review queue, the decision log."""
    lines = []
    sizes = report.get("charts", {}).get("cluster_sizes")
    if sizes:
        lines += ["", "## Cluster sizes", "", "| source records | golden records |", "|---|---|"]
        lines += [f"| {size} | {n:,} |" for size, n in sizes]
    golden = report.get("golden")
    if not golden:
        return lines
    lines += ["", "## Merges and conflicts per source", "", "| source | records | merged | conflicts |",
              "|---|---|---|---|"]
    lines += [f"| {s} | {r['records']:,} | {r['merged']:,} | {r['conflicts']:,} |"
              for s, r in golden["sources"].items()]
    if golden["review"]:
        lines += ["", "## Review queue", "", "| kind | open | decided | closed |", "|---|---|---|---|"]
        lines += [f"| {k} | " + " | ".join(f"{c.get(s, 0):,}" for s in ("open", "decided", "closed")) + " |"
                  for k, c in golden["review"].items()]
    decisions = golden["decisions"]
    lines += ["", "## Decision log", "", f"{decisions['active']:,} active, {decisions['revoked']:,} revoked "
              f"(newest first, up to {len(decisions['log'])} shown).", ""]
    if decisions["log"]:
        lines += ["| # | when | who | item | decision |", "|---|---|---|---|---|"]
        lines += [f"| {d['id']} | {d['at']} | {d['who']} | {d['item_id'] or ''} | {d['decision']} |"
                  for d in decisions["log"]]
    return lines




# -- chart data, collected from the workspace ---------------------------------------------------------

def chart_data(project: Project, ws: Workspace) -> dict[str, Any]:
    """What the report's charts show beyond the reconciliation: match weights, cluster sizes, load results.

    Binned and counted here, so the JSON stays small whatever the number of records.
    """
    return {"match_weights": _weight_histogram(project, ws), "cluster_sizes": _cluster_sizes(ws),
            "loads": _load_outcomes(ws)}


def _weight(probability: float) -> float:
    """A match probability as a match weight (log2 of the odds), the histogram's axis."""
    return math.log2(probability / (1.0 - probability))


def _weight_histogram(project: Project, ws: Workspace) -> dict[str, Any] | None:
    weights = ws.frame(sa.select(pairs.c.match_weight).where(pairs.c.match_weight.is_not(None)))["match_weight"]
    if weights.empty:
        return None  # deterministic matching scores nothing
    # Deterministic rules carry no thresholds; the probabilistic matcher's settings do.
    thresholds = getattr(project.config.rules.match, "thresholds", None)
    marks = {name: _weight(p) for name, p in (thresholds.model_dump() if thresholds else {}).items() if 0 < p < 1}
    values = weights.astype(float).to_numpy()
    low = min(values.min(), *marks.values()) if marks else values.min()
    high = max(values.max(), *marks.values()) if marks else values.max()
    counts, edges = np.histogram(values, bins=WEIGHT_BINS, range=(math.floor(low), math.ceil(high)))
    return {"counts": counts.tolist(), "edges": [round(e, 3) for e in edges.tolist()],
            "thresholds": {k: round(v, 3) for k, v in marks.items()}, "pairs": int(len(values))}


def _cluster_sizes(ws: Workspace) -> list[tuple[str, int]]:
    members = sa.select(xref.c.golden_id, sa.func.count().label("size")).group_by(xref.c.golden_id).subquery()
    sizes = ws.frame(sa.select(members.c.size, sa.func.count().label("n")).group_by(members.c.size))
    capped = sizes["size"].astype(int).clip(upper=LARGEST_SIZE_SHOWN)
    counts = sizes["n"].astype(int).groupby(capped).sum()
    return [(f"{s}+" if s == LARGEST_SIZE_SHOWN else str(s), int(n)) for s, n in counts.items()]


def _load_outcomes(ws: Workspace) -> dict[str, dict[str, int]]:
    """Per phase: rows the target holds (created or updated by it) and rows it still refuses."""
    done = ws.frame(sa.select(id_map.c.phase, id_map.c.action, sa.func.count().label("n"))
                    .group_by(id_map.c.phase, id_map.c.action))
    loaded = sa.select(id_map.c.entity, id_map.c.key)
    refused = ws.frame(sa.select(load_results.c.phase, load_results.c.entity, load_results.c.key)
                       .where(load_results.c.status != "success",
                              sa.tuple_(load_results.c.entity, load_results.c.key).not_in(loaded)).distinct())
    out: dict[str, dict[str, int]] = {}
    for row in done.itertuples(index=False):
        out.setdefault(row.phase, {"created": 0, "updated": 0, "failed": 0})[row.action] = int(row.n)
    for phase, n in refused.groupby("phase").size().items():
        out.setdefault(phase, {"created": 0, "updated": 0, "failed": 0})["failed"] = int(n)
    return out


# -- the HTML page ---------------------------------------------------------------------------------------

def _num(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"<td class='num'>{v:,}</td>"
    return f"<td>{escape(str(v))}</td>"


def _yes(ok: bool) -> str:
    return "<td class='ok'>yes</td>" if ok else "<td class='no'>NO</td>"


def _table(head: list[str], rows: list[str]) -> str:
    return "<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>" + \
        "".join(rows) + "</tbody></table>"


def _card(title: str, body: str, note: str = "") -> str:
    lead = f"<p class='muted'>{escape(note)}</p>" if note else ""
    return f"<section class='card'><h2>{escape(title)}</h2>{lead}{body}</section>"


def to_html(report: dict[str, Any]) -> str:
    """The reconciliation as one self-contained HTML page (inline CSS and SVG charts, no network)."""
    holds = report["holds"]
    verdict = (f"<p class='verdict {'ok' if holds else 'no'}'><code>in = loaded + merged + quarantined</code> "
               f"<strong>{'holds' if holds else 'does NOT hold'}</strong></p>")
    table = _table(["source", *COLUMNS, "holds"], [
        f"<tr class='{'' if r['holds'] else 'bad'}'><th>{escape(n)}</th>" + "".join(_num(r[c]) for c in COLUMNS)
        + _yes(r["holds"]) + "</tr>" for n, r in _rows(report)])
    funnel = charts.stacked_bars([(n, [r[s] for s in FUNNEL]) for n, r in report["sources"].items()], FUNNEL,
                                 label="per-source funnel")
    cards = [_card("Per-source funnel", charts.legend(FUNNEL) + funnel, "every row read, and where it went"),
             _quarantine_card(report), *_chart_cards(report.get("charts", {})), _phases_card(report),
             *_golden_cards(report.get("golden"))]
    if report.get("read_back"):
        cards.append(_card("Read-back from the target", _table(["entity", "ledger", "target", "changed", "holds"], [
            f"<tr><th>{escape(e)}</th>{_num(c['expected'])}{_num(c['found'])}{_num(c.get('mismatched', 0))}"
            f"{_yes(c['holds'])}</tr>"
            for e, c in report["read_back"].items()]), "rows the load ledger says are there, counted in the CRM"))
    body = verdict + table + "<div class='grid'>" + "".join(cards) + "</div>"
    return charts.page("Reconciliation", body, subtitle="Every source row accounted for: loaded into the new CRM, "
                       "merged into a golden record that was, or quarantined with a reason.")


def _quarantine_card(report: dict[str, Any]) -> str:
    by_reason: dict[str, int] = {}
    for reasons in report.get("quarantine_reasons", {}).values():
        for reason, n in reasons.items():
            by_reason[reason] = by_reason.get(reason, 0) + int(n)
    if not by_reason:
        return _card("Quarantine reasons", "<p>No row is quarantined.</p>")
    ranked = sorted(by_reason.items(), key=lambda kv: -kv[1])
    rows = [f"<tr><th>{escape(s)}</th><td><code>{escape(r)}</code></td>{_num(int(n))}</tr>"
            for s, reasons in report["quarantine_reasons"].items()
            for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    return _card("Quarantine reasons", charts.bar_chart(ranked, label="quarantined rows per reason", css="fill bad")
                 + _table(["source", "reason", "rows"], rows), "open quarantine rows, all sources")


def _chart_cards(data: dict[str, Any]) -> list[str]:
    cards = []
    weights = data.get("match_weights")
    if weights:
        chart = charts.histogram(weights["counts"], weights["edges"], markers=weights["thresholds"],
                                 label="match weight histogram")
        cards.append(_card("Match weights", chart,
                           f"{weights['pairs']:,} scored pairs; dashed lines mark the thresholds"))
    elif "match_weights" in data:
        cards.append(_card("Match weights", "<p>No scored pairs: matching was deterministic.</p>"))
    if data.get("cluster_sizes"):
        cards.append(_card("Cluster sizes", charts.column_chart(data["cluster_sizes"], label="golden records by size"),
                           "golden records by the number of source records they merge"))
    if data.get("loads"):
        segments = ("created", "updated", "failed")
        bars = charts.stacked_bars([(p, [c[s] for s in segments]) for p, c in data["loads"].items()], segments,
                                   label="load results per phase")
        cards.append(_card("Load results per phase", charts.legend(segments) + bars,
                           "rows in the CRM by the phase that sent them; failed = still refused by the target"))
    return cards


def _phases_card(report: dict[str, Any]) -> str:
    rows = [f"<tr><th>{escape(n)}</th>{_num(p['golden'])}{_num(p['loaded'])}{_num(p['pending'])}{_yes(p['holds'])}</tr>"
            for n, p in report["phases"].items()]
    return _card("Phases", _table(["phase", "golden", "loaded", "pending", "done"], rows),
                 "golden records per wave of the load")


def _golden_cards(golden: dict[str, Any] | None) -> list[str]:
    """Merges and conflicts per source with the review queue, and the stewards' decision log."""
    if not golden:
        return []
    rows = [f"<tr><th>{escape(s)}</th>{_num(r['records'])}{_num(r['merged'])}{_num(r['conflicts'])}</tr>"
            for s, r in golden["sources"].items()]
    queue = [f"<tr><th>{escape(k)}</th>" + "".join(_num(c.get(s, 0)) for s in ("open", "decided", "closed")) + "</tr>"
             for k, c in golden["review"].items()]
    merges = _table(["source", "records", "merged", "conflicts"], rows) + (
        _table(["review items", "open", "decided", "closed"], queue) if queue else "")
    decisions = golden["decisions"]
    log = _table(["#", "when", "who", "item", "decision"], [
        f"<tr>{_num(d['id'])}<td>{escape(d['at'])}</td><td>{escape(str(d['who']))}</td>"
        f"<td>{escape(d['item_id'] or '')}</td><td>{escape(d['decision'])}</td></tr>" for d in decisions["log"]]) \
        if decisions["log"] else "<p>No steward decision yet.</p>"
    return [_card("Merges and conflicts per source", merges,
                  "records folded into a golden record led by another, and attribute conflicts raised"),
            _card("Decision log", log,
                  f"{decisions['active']:,} active, {decisions['revoked']:,} revoked; newest first")]
