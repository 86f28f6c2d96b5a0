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
def run_cmd(project_dir: Path, no_load: bool, phases: tuple[str, ...]) -> None:
    """Run every stage: extract, standardise, validate, match, golden records, load, reconcile."""
    from migrate.pipeline import run

    project = _project(project_dir)
    result = run(project, load=not no_load, phases=list(phases) or None)
    _print_loads(result)
    _print_reconciliation(result.reconciliation)
    out.print(f"\nreport: {result.reports['html']}", highlight=False)
    sys.exit(EXIT_OK if result.reconciliation["holds"] or no_load else EXIT_FAILED)


@main.command()
@project_option
@click.option("--phase", "phases", multiple=True, required=True, help="Phase to load (repeatable, in order).")
def load(project_dir: Path, phases: tuple[str, ...]) -> None:
    """Load phases (waves) of golden records into the new CRM; safe to rerun after a crash."""
    from migrate.pipeline import load_phases

    project = _project(project_dir)
    result = load_phases(project, list(phases))
    _print_loads(result)
    failed = sum(sum(r.failed.values()) for r in result.loads)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


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
    table = Table("run", "command", "status", "started", "finished", "stages", title="runs")
    for r in info["runs"]:
        stages = ", ".join(f"{s['stage']}:{s['status']}" for s in r["stages"])
        table.add_row(r["run_id"], r["command"], r["status"], r["started_at"], r["finished_at"] or "", stages)
    out.print(table)
    counts = Table("what", "rows", title="workspace")
    for k, v in info["counts"].items():
        counts.add_row(k, f"{v:,}")
    out.print(counts)


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


def _print_loads(result: Any) -> None:
    for r in result.loads:
        entities = sorted(set(r.created) | set(r.updated) | set(r.unchanged) | set(r.failed))
        table = Table("entity", "created", "updated", "unchanged", "failed", title=f"phase {r.phase}")
        for e in entities:
            table.add_row(e, *(f"{getattr(r, b).get(e, 0):,}" for b in ("created", "updated", "unchanged", "failed")))
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
