"""The `crm-migrate` command line. Exit codes: 0 ok, 1 failed, 2 usage or configuration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrate.config import redact
from migrate.errors import EXIT_FAILED, EXIT_OK, ConfigError, InputError, MigrateError
from migrate.logs import setup_console

log = logging.getLogger("crm_migrate")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _Group(click.Group):
    """Turns every error into one clear message and an exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            err.print(f"[bold red]error:[/] {len(exc.problems)} problem(s) in the configuration:"
                      if len(exc.problems) > 1 else "[bold red]error:[/] configuration problem:", highlight=False)
            for problem in exc.problems:
                err.print(f"  {redact(problem)}", markup=False, highlight=False)
            sys.exit(exc.exit_code)
        except MigrateError as exc:
            err.print("[bold red]error:[/] ", end="", highlight=False)
            err.print(redact(str(exc)), markup=False, highlight=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted; rerun the same command to resume")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # the last line of defence: one line, details in the log
            log.debug("internal error", exc_info=True)
            err.print("[bold red]error:[/] ", end="", highlight=False)
            err.print(redact(f"internal error: {type(exc).__name__}: {exc} (rerun with -v for details; "
                             "please report it)"), markup=False, highlight=False)
            if ctx.params.get("verbose"):
                err.print_exception()
            sys.exit(EXIT_FAILED)


project_option = click.option("-p", "--project", "project_dir", default=".", show_default=True,
                              type=click.Path(file_okay=True, dir_okay=True, path_type=Path),
                              help="Migration project folder (holding migration.yaml).")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
@click.version_option(package_name="crm-migrate")
def main(verbose: bool) -> None:
    """Move customer data out of legacy systems into a new CRM without losing any of it."""
    setup_console(verbose)


def _project(project_dir: Path):
    from migrate.project import Project

    return Project.load(project_dir)


@main.command()
@click.argument("directory", default="crm-migrate-demo", type=click.Path(path_type=Path))
@click.option("--size", default=2000, show_default=True, type=click.IntRange(100, 5_000_000),
              help="Source rows to generate (contacts + ERP customers).")
@click.option("--seed", default=7, show_default=True, help="Random seed for the generated data.")
def demo(directory: Path, size: int, seed: int) -> None:
    """Write the bundled demo migration into DIRECTORY and run it end to end into SQLite."""
    from migrate.demo import write_demo
    from migrate.pipeline import run

    files = write_demo(directory, size=size, seed=seed)
    log.info("demo migration written to %s", directory)
    project = _project(files.root)
    result = run(project, command="demo")
    _print_reconciliation(result.reconciliation)
    out.print(f"\nreport: {result.reports['html']}\nlog:    {result.log_path}", highlight=False)
    sys.exit(EXIT_OK if result.reconciliation["holds"] else EXIT_FAILED)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a new migration project: a commented migration.yaml, data/ and mappings/."""
    from migrate.scaffold import scaffold

    created = scaffold(directory)
    for path in created:
        out.print(f"created {path}", highlight=False)
    out.print(f"\nnext: put your exports in {directory / 'data'}, edit {directory / 'migration.yaml'}, "
              f"then `crm-migrate run -p {directory}`", highlight=False)


@main.command("run")
@project_option
@click.option("--no-load", is_flag=True, help="Stop after golden records (load waves later with `load --phase`).")
@click.option("--phase", "phases", multiple=True, help="Load only this phase (repeatable).")
@click.option("--retrain", is_flag=True, help="Train the match model afresh instead of reusing the saved one.")
def run_cmd(project_dir: Path, no_load: bool, phases: tuple[str, ...], retrain: bool) -> None:
    """Run every stage: extract, standardise, validate, match, golden records, load, reconcile."""
    from migrate.pipeline import run

    project = _project(project_dir)
    result = run(project, load=not no_load, phases=list(phases) or None, retrain=retrain)
    _print_loads(result.loads)
    _print_reconciliation(result.reconciliation)
    out.print(f"\nreport: {result.reports['html']}", highlight=False)
    sys.exit(EXIT_OK if result.reconciliation["holds"] or no_load else EXIT_FAILED)


@main.command("sync")
@project_option
@click.option("--no-load", is_flag=True, help="Stop after golden records.")
@click.option("--phase", "phases", multiple=True, help="Load only this phase (repeatable).")
def sync_cmd(project_dir: Path, no_load: bool, phases: tuple[str, ...]) -> None:
    """Nightly sync: only what changed since the last run is read, matched and loaded."""
    from migrate.pipeline import sync

    project = _project(project_dir)
    result = sync(project, load=not no_load, phases=list(phases) or None)
    _print_loads(result.loads)
    _print_reconciliation(result.reconciliation)
    sys.exit(EXIT_OK if result.reconciliation["holds"] or no_load else EXIT_FAILED)


@main.command()
@project_option
@click.option("--phase", "phases", multiple=True, required=True, help="Phase to load (repeatable, in order).")
def load(project_dir: Path, phases: tuple[str, ...]) -> None:
    """Load phases (waves) of golden records into the new CRM; safe to rerun after a crash."""
    from migrate.pipeline import load_phases

    project = _project(project_dir)
    result = load_phases(project, list(phases))
    _print_loads(result.loads)
    failed = sum(r.total("failed") + r.total("unprocessed") for r in result.loads)
    if failed:
        out.print(f"{failed:,} row(s) not loaded; `crm-migrate results export -p {project_dir} FILE --status failed` "
                  "lists them with the target's reason", highlight=False)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@main.command()
@project_option
@click.option("--phase", "phases", multiple=True, help="Plan only this phase (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(project_dir: Path, phases: tuple[str, ...], as_json: bool) -> None:
    """Show, per phase, what a load would create, update, leave unchanged or skip; writes nothing."""
    from dataclasses import asdict

    from migrate.plan import plan_phases

    project = _project(project_dir)
    plans = plan_phases(project, project.workspace(), list(phases) or None)
    if as_json:
        click.echo(json.dumps([asdict(p) for p in plans], indent=2))
        return
    _print_loads(plans, "plan")


@main.command()
@project_option
@click.option("--phase", "phases", multiple=True, required=True, help="Phase to roll back (repeatable, in order).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rollback(project_dir: Path, phases: tuple[str, ...], yes: bool) -> None:
    """Undo phases in the CRM: delete what they created, restore what they updated (from the ledger)."""
    from migrate.pipeline import rollback_phases

    project = _project(project_dir)
    if not yes:
        click.confirm(f"Delete what phase(s) {', '.join(phases)} created in the CRM and restore what they "
                      "updated?", abort=True, err=True)
    for r in rollback_phases(project, list(phases)):
        table = Table("entity", "deleted", "restored", title=f"rollback {r.phase}")
        for entity in r.deleted:
            table.add_row(entity, f"{r.deleted[entity]:,}", f"{r.restored.get(entity, 0):,}")
        out.print(table)


@main.group()
def results() -> None:
    """Per-row load results (success with target id, failed with reason, unprocessed)."""


@results.command("export")
@project_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_id", help="Results of this run (default: the latest run that sent rows).")
@click.option("--phase", help="Only this phase.")
@click.option("--status", type=click.Choice(["success", "failed", "unprocessed"]), help="Only this outcome.")
def results_export(project_dir: Path, file: Path, run_id: str | None, phase: str | None, status: str | None) -> None:
    """Write per-row load results to FILE (CSV, like Bulk API 2.0 result files)."""
    from migrate.ledger import export_results

    n = export_results(_project(project_dir).workspace(), file, run_id, phase, status)
    out.print(f"{n:,} results written to {file}", highlight=False)


@main.command()
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(project_dir: Path, as_json: bool) -> None:
    """Show recent runs, their stages, and what the workspace holds."""
    from migrate.status import workspace_status

    info = workspace_status(_project(project_dir))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    table = Table(title="runs")
    table.add_column("run", no_wrap=True)
    for name in ("command", "status", "started (UTC)", "took", "stages"):
        table.add_column(name)
    for r in info["runs"]:
        stages = " ".join(s["stage"] if s["status"] == "done" else f"{s['stage']} ({s['status']})"
                          for s in sorted(r["stages"], key=lambda s: s["position"]))
        table.add_row(r["run_id"], r["command"], r["status"], r["started_at"][:19].replace("T", " "),
                      _took(r["started_at"], r["finished_at"]), stages)
    out.print(table)
    counts = Table("what", "rows", title="workspace")
    for k, v in info["counts"].items():
        counts.add_row(k, f"{v:,}")
    out.print(counts)


def _took(started: str, finished: str | None) -> str:
    if not finished:
        return "running"
    from datetime import datetime

    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


@main.command()
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the reconciliation as JSON.")
def reconcile(project_dir: Path, as_json: bool) -> None:
    """Prove in = loaded + merged + quarantined per source and phase; exit 1 when it does not hold."""
    from migrate.reconcile import reconcile as compute
    from migrate.report import write_reports

    project = _project(project_dir)
    report = compute(project, project.workspace())
    paths = write_reports(report, project.state_dir / "reports")
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_reconciliation(report)
        out.print(f"\nreport: {paths['html']}", highlight=False)
    sys.exit(EXIT_OK if report["holds"] else EXIT_FAILED)


@main.command()
@project_option
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report here.")
def report(project_dir: Path, fmt: str, output: Path | None) -> None:
    """Write the reconciliation report (HTML or Markdown for people, JSON for jobs)."""
    from migrate.reconcile import reconcile as compute
    from migrate.report import write_reports

    project = _project(project_dir)
    data = compute(project, project.workspace())
    paths = write_reports(data, project.state_dir / "reports")
    if output is not None:
        output.write_text(paths[fmt].read_text(encoding="utf-8"), encoding="utf-8")
    out.print(str(output or paths[fmt]), highlight=False)


@main.command("profile")
@project_option
@click.option("--source", "sources", multiple=True, help="Profile only this source (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def profile_cmd(project_dir: Path, sources: tuple[str, ...], as_json: bool) -> None:
    """Profile the raw sources before migrating: fill rates, shapes, invalid values, duplicate ids."""
    from migrate.profile import profile, profile_html

    project = _project(project_dir)
    data = profile(project, list(sources) or None)
    folder = project.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    (folder / "profile.html").write_text(profile_html(data), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for name, src in data["sources"].items():
        table = Table("column", "filled", "distinct", "top shape", title=f"{name}: {src['rows']:,} rows")
        for col, c in src["columns"].items():
            table.add_row(col, f"{c['fill_rate']:.0%}", f"{c['distinct']:,}", c["shapes"][0][0] if c["shapes"] else "")
        out.print(table)
        for reason, n in {**src["unreadable_rows"], **src["would_quarantine"]}.items():
            out.print(f"  {reason}: {n:,}", highlight=False)
    out.print(f"report: {folder / 'profile.html'}", highlight=False)


@main.group("match")
def match_group() -> None:
    """Inspect matching before and after a run."""


@match_group.command("blocking")
@project_option
def match_blocking(project_dir: Path) -> None:
    """Count candidate pairs per blocking rule and in total, before any scoring; warn on huge blocks."""
    from migrate.workspace import read_table, records
    from rules.match import blocking_report

    project = _project(project_dir)
    settings = _probabilistic_settings(project)
    staged = read_table(project.workspace(), records)
    if staged.empty:
        raise InputError("no staged records yet: run `crm-migrate run --no-load` first")
    report_frame = blocking_report(staged, settings)
    table = Table(*[str(c) for c in report_frame.columns], title="candidate pairs per blocking rule")
    for row in report_frame.itertuples(index=False):
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    out.print(table)
    if "oversized_blocks" in report_frame and (report_frame["oversized_blocks"] > 0).any():
        err.print("[yellow]warning:[/] some blocks exceed max_block_size and are skipped; "
                  "add a field to those rules", highlight=False)


@main.command()
@project_option
@click.argument("record_key_l")
@click.argument("record_key_r")
def explain(project_dir: Path, record_key_l: str, record_key_r: str) -> None:
    """Explain the match score of two records: each comparison's level and weight, prior to probability."""
    from migrate.match_model import load_model
    from migrate.workspace import read_table, records
    from rules.match.explain import explain as explain_pair
    from rules.match.explain import waterfall_text

    project = _project(project_dir)
    settings = _probabilistic_settings(project)
    ws = project.workspace()
    model = load_model(ws)
    if model is None:
        raise InputError("no trained match model yet: run `crm-migrate run` first")
    found = read_table(ws, records, where=records.c.record_key.in_([record_key_l, record_key_r]))
    missing = [k for k in (record_key_l, record_key_r) if k not in set(found["record_key"])]
    if missing:
        raise InputError(f"no staged record {', '.join(map(repr, missing))} (record keys look like 'erp:1042')")
    by_key = found.set_index("record_key", drop=False)
    click.echo(waterfall_text(explain_pair(by_key.loc[record_key_l], by_key.loc[record_key_r], settings, model)))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the rows with cluster_id and match_probability.")
@click.option("--region", "default_region", help="Country for phone numbers without a country code (e.g. GB).")
def dedupe(file: Path, output: Path, default_region: str | None) -> None:
    """Quick mode: find duplicates in one contacts CSV with no configuration."""
    from migrate.progress import StageProgress
    from rules.match.dedupe import dedupe_csv

    if not file.is_file():
        raise InputError(f"{file}: file not found")
    with StageProgress() as report:
        dedupe_csv(file, output, default_region=default_region, progress=report)
    out.print(f"written {output}", highlight=False)


def _probabilistic_settings(project: Any) -> Any:
    from rules.match import MatchSettings

    settings = project.config.rules.match
    if not isinstance(settings, MatchSettings):
        raise ConfigError(f"{project.located.path}: rules.match uses deterministic rules; blocking and explanations "
                          "need the probabilistic matcher (rules.match.blocking and rules.match.compare)")
    return settings


@main.group()
def mappings() -> None:
    """Bundled mapping templates for common exports."""


@mappings.command("list")
def mappings_list() -> None:
    """List the bundled mapping templates."""
    from mappings import TEMPLATES_DIR, template_names

    for name in template_names():
        first = (TEMPLATES_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        out.print(f"{name:<24} {first}", highlight=False, markup=False)


@mappings.command("show")
@click.argument("name")
def mappings_show(name: str) -> None:
    """Print a bundled mapping template (copy it into your project to adapt it)."""
    from mappings import TEMPLATES_DIR, template_names

    if name not in template_names():
        raise click.UsageError(f"no template {name!r}; `crm-migrate mappings list` shows them")
    click.echo((TEMPLATES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


@main.group("map")
def map_group() -> None:
    """Work out a mapping for a new source."""


@map_group.command("suggest")
@click.argument("source")
@project_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the mapping YAML here.")
def map_suggest(source: str, project_dir: Path, output: Path | None) -> None:
    """Propose a mapping for SOURCE (a file, or a source name in the project) from its headers."""
    from mappings.suggest import suggest_mapping, suggestion_yaml

    headers = _source_columns(source, project_dir)
    suggestions = suggest_mapping(headers)
    table = Table("canonical field", "source column(s)", "confidence", title=f"suggested mapping for {source}")
    for s in suggestions:
        table.add_row(s.field, ", ".join(s.columns), ", ".join(f"{c:.0f}" for c in s.confidence))
    err.print(table)
    text = suggestion_yaml(suggestions, headers)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"written to {output}; edit it, then reference it from migration.yaml", highlight=False)


def _source_columns(source: str, project_dir: Path) -> list[str]:
    from connectors import open_source
    from connectors.registry import kind_for_path

    path = Path(source)
    if path.is_file():
        return open_source(path.stem, {"connector": kind_for_path(path), "path": str(path.resolve())}).columns()
    if path.suffix or "/" in source:
        raise InputError(f"{path}: file not found")
    project = _project(project_dir)
    if source not in project.config.sources:
        raise click.UsageError(f"{source!r} is neither a file nor a source of {project.dir / 'migration.yaml'}")
    return project.source(source).columns()


@main.group()
def quarantine() -> None:
    """Rows that could not be migrated: list them, export them for fixing, requeue the fixes."""


@quarantine.command("list")
@project_option
@click.option("--source", help="Only this source.")
@click.option("--reason", help="Only this reason code (e.g. invalid_email).")
@click.option("--limit", default=50, show_default=True, help="Show at most this many rows.")
def quarantine_list(project_dir: Path, source: str | None, reason: str | None, limit: int) -> None:
    """List open quarantine rows, newest first, with a count per reason."""
    from migrate.quarantine import list_rows

    rows = list_rows(_project(project_dir).workspace(), source, reason)
    table = Table("id", "source", "ref", "reason", "column", "value", title=f"quarantine ({len(rows):,} open)")
    for r in rows.head(limit).itertuples(index=False):
        table.add_row(str(r.id), r.source, r.source_ref, r.reason, r.column or "", (r.value or "")[:60])
    out.print(table)
    for reason_code, n in rows["reason"].value_counts().items():
        out.print(f"  {reason_code}: {n:,}", highlight=False)


@quarantine.command("show")
@project_option
@click.argument("quarantine_id", type=int)
def quarantine_show(project_dir: Path, quarantine_id: int) -> None:
    """Show one quarantine row and the source row behind it."""
    from migrate.quarantine import get_row

    row = get_row(_project(project_dir).workspace(), quarantine_id)
    for key in ("id", "source", "dataset", "source_ref", "record_key", "stage", "reason", "column", "value",
                "detail", "status", "run_id"):
        out.print(f"{key:>11}: {row.get(key)}", highlight=False, markup=False)
    if row["raw"]:
        out.print("source row:", highlight=False)
        for col, value in row["raw"].items():
            out.print(f"  {col}: {value}", highlight=False, markup=False)


@quarantine.command("export")
@project_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source", help="Only this source.")
@click.option("--reason", help="Only this reason code.")
def quarantine_export(project_dir: Path, file: Path, source: str | None, reason: str | None) -> None:
    """Write open quarantine rows to FILE (CSV) for a steward to fix in a spreadsheet."""
    from migrate.quarantine import export_csv

    n = export_csv(_project(project_dir).workspace(), file, source, reason)
    out.print(f"{n:,} rows written to {file}; fix the source columns, then `crm-migrate quarantine requeue {file}`",
              highlight=False)


@quarantine.command("requeue")
@project_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-load", is_flag=True, help="Stop after golden records.")
def quarantine_requeue(project_dir: Path, file: Path, no_load: bool) -> None:
    """Put corrected rows from FILE back through the pipeline; bad rows are reported, the rest applied."""
    from migrate.pipeline import run
    from migrate.quarantine import requeue

    project = _project(project_dir)
    result = requeue(project.workspace(), file)
    for problem in result.problems:
        err.print(f"  skipped: {problem}", markup=False, highlight=False)
    out.print(f"{result.stored:,} corrected rows stored; running the pipeline", highlight=False)
    outcome = run(project, load=not no_load, command="quarantine requeue")
    _print_reconciliation(outcome.reconciliation)
    sys.exit(EXIT_FAILED if result.problems or not (outcome.reconciliation["holds"] or no_load) else EXIT_OK)


@main.group()
def review() -> None:
    """The steward review queue: uncertain matches and conflicting values."""


@review.command("serve")
@project_option
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the page reachable from other machines.")
@click.option("--who", help="Steward recorded with each decision (default: your login name).")
def review_serve(project_dir: Path, port: int, host: str, who: str | None) -> None:
    """Open the review queue as a local web page for data stewards; prints the link that opens it."""
    from migrate.web.server import ANY_HOST, ReviewServer

    server = ReviewServer(_project(project_dir), host=host, port=port, who=who)
    if host in ANY_HOST:
        err.print(f"warning: listening on every interface ({host}): other machines can reach the page over plain "
                  "HTTP; the token still guards it", highlight=False)
    out.print(f"review page: {server.url}", highlight=False, soft_wrap=True)
    out.print("only this link opens it (it carries this session's token); Ctrl-C stops the server", highlight=False)
    server.run()


def _steward(who: str | None) -> str:
    import getpass

    return who or getpass.getuser()


def _cell(value: Any) -> Text:
    """A value as a table cell: lists comma-separated, missing as empty, never read as markup."""
    from pandas import isna

    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return Text("" if value is None or (not isinstance(value, (str, dict)) and isna(value)) else str(value))


def _print_records(frame: Any, fields: list[str], title: str) -> None:
    """Source records side by side: one column per record, one row per field that any of them fills."""
    table = Table("field", title=title)
    for key in frame["record_key"]:
        table.add_column(Text(key))
    for f in fields:
        values = [_cell(v) for v in frame[f]]
        if any(v.plain for v in values):
            table.add_row(f, *values)
    out.print(table)


who_option = click.option("--who", help="Steward recorded with the decision (default: your login name).")


@review.command("list")
@project_option
@click.option("--kind", type=click.Choice(["pair", "cluster", "conflict"]), help="Only this kind of item.")
@click.option("--source", help="Only items involving a record of this source.")
@click.option("--status", type=click.Choice(["open", "decided", "closed", "all"]), default="open", show_default=True)
@click.option("--band", nargs=2, type=float, metavar="LOW HIGH",
              help="Only pairs with a match probability in this band.")
@click.option("--limit", default=50, show_default=True, help="Show at most this many items.")
def review_list(project_dir: Path, kind: str | None, source: str | None, status: str,
                band: tuple[float, float] | None, limit: int) -> None:
    """List review items: uncertain pairs, oversized clusters, attribute conflicts."""
    from migrate.review import list_items

    items = list_items(_project(project_dir).workspace(), kind, source, status, band or None)
    table = Table("item", "kind", "status", "p", "golden / attribute", "records",
                  title=f"review ({len(items):,} {status})")
    for it in items.head(limit).itertuples(index=False):
        subject = f"{it.golden_id} {it.attribute}" if it.attribute else ""
        p = "" if it.probability is None or it.probability != it.probability else f"{it.probability:.3f}"
        keys = " ".join(it.records[:4]) + (" …" if len(it.records) > 4 else "")
        table.add_row(_cell(it.item_id), it.kind, it.status, p, _cell(subject), _cell(keys))
    out.print(table)
    for k, n in items["kind"].value_counts().items():
        out.print(f"  {k}: {n:,}", highlight=False)


@review.command("show")
@project_option
@click.argument("item_id")
def review_show(project_dir: Path, item_id: str) -> None:
    """Show an item: its records side by side, the evidence, and the version to decide on."""
    from migrate.review import SHOWN, get_item

    item = get_item(_project(project_dir).workspace(), item_id)
    subject = f" · {item.golden_id} {item.attribute}" if item.attribute else ""
    out.print(Text(f"{item.item_id} · {item.kind} · {item.status}{subject} · version {item.version}"))
    _print_records(item.records, SHOWN[1:], "records")
    evidence = item.evidence
    if evidence.get("probability") is not None:
        out.print(f"match probability {evidence['probability']:.3f}", highlight=False)
    for name, level in (evidence.get("levels") or {}).items():
        out.print(Text(f"  {name}: {level}"))
    for v in evidence.get("values", []):
        out.print(Text(f"  {v['record_key']} ({v['source']}): {_cell(v['value'])}"))
    if "golden_value" in evidence:
        out.print(Text(f"golden value now: {_cell(evidence['golden_value'])}"))
    for key in evidence.get("missing_records", []):
        out.print(Text(f"  {key} is no longer in the sources"))
    for d in item.decisions.itertuples(index=False):
        out.print(Text(f"decided: #{d.id} {d.constraint} by {d.who} at {d.at}" + (f" ({d.note})" if d.note else "")))
    out.print(Text(f"decide: crm-migrate review decide {item.item_id} --match | --no-match | --pick VALUE | "
                   f"--override FIELD=VALUE --seen {item.version}"))


@review.command("decide")
@project_option
@click.argument("item_id")
@click.option("--match", "action", flag_value="match", help="The records are the same customer.")
@click.option("--no-match", "action", flag_value="no_match", help="The records are different customers.")
@click.option("--pick", "pick", metavar="VALUE", help="Keep this one of the conflicting values.")
@click.option("--override", "override", metavar="FIELD=VALUE", help="Set a golden attribute to this value.")
@click.option("--note", help="Why, for the decision log.")
@click.option("--seen", "seen_version", help="The version you looked at (`review show` prints it).")
@who_option
def review_decide(project_dir: Path, item_id: str, action: str | None, pick: str | None, override: str | None,
                  note: str | None, seen_version: str | None, who: str | None) -> None:
    """Decide an item; the decision becomes a constraint every later run honours."""
    from migrate.review import Decision, decide

    chosen = [a for a in (action, pick and "pick", override and "override") if a]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --match, --no-match, --pick VALUE, --override FIELD=VALUE")
    project = _project(project_dir)
    decision = Decision.parse(chosen[0], pick if pick is not None else override)
    result = decide(project, project.workspace(), item_id, decision, _steward(who), note, seen_version)
    out.print(Text(result.message))


@review.command("revoke")
@project_option
@click.argument("decision_id", type=int)
@who_option
def review_revoke(project_dir: Path, decision_id: int, who: str | None) -> None:
    """Withdraw a decision: later runs no longer honour it and its item opens again."""
    from migrate.review import revoke

    project = _project(project_dir)
    revoke(project, project.workspace(), decision_id, _steward(who))
    out.print(f"decision {decision_id} revoked; the next run no longer applies it", highlight=False)


@review.command("log")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print every decision as JSON.")
@click.option("--limit", default=50, show_default=True, help="Show at most this many decisions, newest first.")
def review_log(project_dir: Path, as_json: bool, limit: int) -> None:
    """The decision log: who decided what, when, why, and what it replaced."""
    from migrate.review import decision_log, decision_text

    log_frame = decision_log(_project(project_dir).workspace())
    if as_json:
        click.echo(json.dumps(log_frame.astype(object).where(log_frame.notna(), None).to_dict("records"),
                              indent=2, default=str))
        return
    out.print(f"{len(log_frame):,} decisions, newest first", highlight=False)
    for d in log_frame.iloc[::-1].head(limit).to_dict("records"):
        item = f" on {d['item_id']}" if isinstance(d["item_id"], str) else ""
        out.print(Text(f"#{d['id']} {d['at']}{item}: {decision_text(d)}"))


@review.command("export")
@project_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["pair", "cluster", "conflict"]), help="Only this kind of item.")
@click.option("--source", help="Only items involving a record of this source.")
def review_export(project_dir: Path, file: Path, kind: str | None, source: str | None) -> None:
    """Write open items to FILE (CSV) to review offline in a spreadsheet."""
    from migrate.review import export_csv

    n = export_csv(_project(project_dir).workspace(), file, kind, source)
    out.print(f"{n:,} items written to {file}; fill the decision column (match, no_match, pick, override) and "
              f"value, then `crm-migrate review import {file}`", highlight=False)


@review.command("import")
@project_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@who_option
def review_import(project_dir: Path, file: Path, who: str | None) -> None:
    """Apply the decisions filled into FILE; bad rows are reported, the rest applied (exit 1 if any was bad)."""
    from migrate.review import import_csv

    project = _project(project_dir)
    result = import_csv(project, project.workspace(), file, _steward(who))
    for problem in result.problems:
        err.print(Text(f"  skipped: {problem}"))
    out.print(f"{result.applied:,} decisions applied, {len(result.problems):,} rows skipped; "
              "the next run applies them", highlight=False)
    sys.exit(EXIT_FAILED if result.problems else EXIT_OK)


@main.group()
def golden() -> None:
    """Golden records: their values with lineage, their history, and unmerging a record."""


@golden.command("show")
@project_option
@click.argument("golden_id")
def golden_show(project_dir: Path, golden_id: str) -> None:
    """Show a golden record: every value with the record and rule it came from, and the records behind it."""
    from migrate.golden import golden_record
    from migrate.review import SHOWN

    view = golden_record(_project(project_dir).workspace(), golden_id)
    retired = f", retired into {view.retired_into}" if view.retired_into else ""
    out.print(Text(f"{view.golden_id} ({view.status}{retired}, {len(view.members)} source records)"))
    for a in view.attributes.itertuples(index=False):
        source = f"from {a.from_record_key}" if a.from_record_key else "set by a steward"
        rule = a.rule + (f" ({a.who}, {a.at})" if a.who else "")
        held = f" · held by {'; '.join(a.held_by)}" if a.held_by else ""
        out.print(Text(f"  {a.attribute:<17} {_cell(a.value)}\n  {'':<17} {source} · {rule}{held}"))
    _print_records(view.members, ["role", *SHOWN[1:]], "source records")


@golden.command("history")
@project_option
@click.argument("golden_id")
def golden_history_cmd(project_dir: Path, golden_id: str) -> None:
    """Show what happened to a golden record: created, grown, merged, split, retired, restored, decisions."""
    from migrate.golden import golden_history

    events = golden_history(_project(project_dir).workspace(), golden_id)
    for e in events.itertuples(index=False):
        others = " ".join(f"{label} {v}" for label, v in (("run", e.run_id), ("of", e.golden_id), ("with", e.other_id))
                          if isinstance(v, str))
        out.print(Text(f"{e.at}  {e.event:<10} {e.detail}  ({others})"))


@golden.command("unmerge")
@project_option
@click.argument("record_key")
@click.option("--note", help="Why, for the decision log.")
@who_option
def golden_unmerge(project_dir: Path, record_key: str, note: str | None, who: str | None) -> None:
    """Take RECORD_KEY out of its golden record; the next run gives it its own (its earlier id if it had one)."""
    from migrate.review import unmerge

    project = _project(project_dir)
    result = unmerge(project, project.workspace(), record_key, _steward(who), note)
    out.print(Text(result.message))


def _print_loads(loads: list[Any], what: str = "phase") -> None:
    from migrate.loader import BUCKETS

    for r in loads:
        entities = sorted({e for b in BUCKETS for e in getattr(r, b)})
        table = Table("entity", *BUCKETS, title=f"{what} {r.phase}")
        for e in entities:
            table.add_row(e, *(f"{getattr(r, b).get(e, 0):,}" for b in BUCKETS))
        out.print(table)


def _print_reconciliation(report: dict[str, Any]) -> None:
    table = Table("source", "in", "quarantined", "merged", "loaded", "pending", "holds", title="reconciliation")
    rows = [*report["sources"].items(), ("total", report["total"])]
    for name, r in rows:
        table.add_row(name, *(f"{r[c]:,}" for c in ("in", "quarantined", "merged", "loaded", "pending")),
                      "[green]yes[/]" if r["holds"] else "[red]NO[/]")
    out.print(table)
    verdict = "[green]holds[/]" if report["holds"] else "[red]does NOT hold[/]"
    out.print(f"in = loaded + merged + quarantined {verdict}")


if __name__ == "__main__":
    main()
