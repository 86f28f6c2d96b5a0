"""The phased loader: golden records and their related records into the new CRM, exactly once.

Per phase: golden organisations (accounts), golden people (contacts), then their related
records (orders, invoices, activities) re-pointed to the parent's target id. Rows whose
checksum in ``id_map`` is unchanged are not sent again; the rest go in batches through the
ledger protocol of :mod:`migrate.ledger`. A phase that was fully loaded from the same
staged state and configuration is recognised from the ledger and skipped outright.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from connectors.targets import BatchPlan, Target, open_target
from mappings.canonical import GOLDEN_ATTRIBUTES, LIST_FIELDS
from migrate.errors import ConfigError
from migrate.ledger import ADOPTED, CREATED, UPDATED, PhaseLedger
from migrate.progress import progress
from migrate.project import Project
from migrate.retry import with_retry
from migrate.workspace import Workspace, golden, id_map, read_table, records, related, stages, xref

log = logging.getLogger("crm_migrate")

#: Entities golden records load into (organisations, then people).
GOLDEN_ENTITIES = ("accounts", "contacts")
#: Related kinds with a table of their own in the reference schema; others load as activities.
RELATED_ENTITIES = ("orders", "invoices", "activities")
RELATED_COLUMNS = ("occurred_on", "amount", "currency", "status")
BUCKETS = ("created", "updated", "unchanged", "failed", "unprocessed", "skipped")


@dataclass
class PhaseResult:
    """What one phase load did (or, for a plan, would do), per entity and bucket."""

    phase: str
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    unprocessed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, bucket: str, entity: str, n: int) -> None:
        """Count n rows of an entity in a bucket."""
        counts = getattr(self, bucket)
        counts[entity] = counts.get(entity, 0) + int(n)

    def total(self, bucket: str) -> int:
        """Rows in a bucket over every entity."""
        return sum(getattr(self, bucket).values())


def assign_phases(project: Project, frame: pd.DataFrame, loaded_phase: pd.Series) -> pd.Series:
    """The phase of each golden record: where it was loaded before, else the first phase whose predicate holds.

    A golden record belongs to exactly one phase; phases are tried in order and a phase
    without ``where`` takes the rest.
    """
    phase = loaded_phase.reindex(frame["golden_id"]).to_numpy()
    result = pd.Series(phase, index=frame.index, dtype=object)
    todo = result.isna()
    for p in project.config.phases:
        if not todo.any():
            break
        if p.where is None:
            hit = todo
        else:
            try:
                hit = todo & frame.eval(p.where, engine="python").astype(bool)
            except Exception as exc:  # a predicate is user text: any failure is a config problem
                raise ConfigError(f"phase {p.name!r}: predicate {p.where!r} failed: {exc}") from None
        result[hit] = p.name
        todo &= ~hit
    return result


def golden_frame(ws: Workspace, with_sources: bool = False) -> pd.DataFrame:
    """Active golden records; with ``with_sources``, also ``source`` (the leading record's) and ``sources``.

    ``sources`` is the sorted, comma-joined set of member sources, so a phase can say
    ``sources.str.contains('erp')``.
    """
    # Lineage and identifiers are not loaded: reading and decoding them would dominate a large load.
    columns = ["golden_id", "member_count", *(a for a in GOLDEN_ATTRIBUTES if a != "identifiers")]
    query = sa.select(*(golden.c[c] for c in columns)).where(golden.c.status == "active")
    sql = str(query.compile(ws.engine, compile_kwargs={"literal_binds": True}))
    with ws.engine.connect() as conn:  # the driver's own cursor: no per-row result processing for 1M rows
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(sql)
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    for col in LIST_FIELDS:  # one JSON parse for the whole column instead of one per row
        frame[col] = json.loads("[" + ",".join(v if isinstance(v, str) else "[]" for v in frame[col]) + "]")
    for col in ("email_opt_in", "do_not_contact"):
        frame[col] = frame[col].astype("boolean")
    if with_sources:
        members = ws.frame(sa.select(xref.c.golden_id, xref.c.role, records.c.source)
                           .select_from(xref.join(records, records.c.record_key == xref.c.record_key)))
        anchor = members[members["role"] == "anchor"].drop_duplicates("golden_id").set_index("golden_id")["source"]
        joined = members.drop_duplicates(["golden_id", "source"]).sort_values("source").groupby("golden_id")["source"]
        frame["source"] = frame["golden_id"].map(anchor)
        frame["sources"] = frame["golden_id"].map(joined.agg(",".join)).fillna("")
    return frame


def phased_golden(project: Project, ws: Workspace) -> pd.DataFrame:
    """Active golden records with their ``phase`` (sticky to the phase a record was loaded in)."""
    predicates = " ".join(p.where or "" for p in project.config.phases)
    frame = golden_frame(ws, with_sources="source" in predicates)
    loaded = ws.frame(sa.select(id_map.c.key, id_map.c.phase).where(id_map.c.entity.in_(GOLDEN_ENTITIES)))
    frame["phase"] = assign_phases(project, frame, loaded.set_index("key")["phase"] if len(loaded) else pd.Series())
    return frame


def check_phase(project: Project, phase: str) -> None:
    """A phase name that is not in migration.yaml is a usage error."""
    names = [p.name for p in project.config.phases]
    if phase not in names:
        raise ConfigError(f"no phase {phase!r} in migration.yaml (phases: {', '.join(names)})")


def golden_rows(mine: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A phase's golden records as rows of ``accounts`` (organisations) and ``contacts`` (people)."""
    is_org = (mine["entity"] == "organization") | (mine["first_name"].isna() & mine["last_name"].isna())
    orgs, people = mine[is_org], mine[~is_org]
    return {
        "accounts": pd.DataFrame({"external_id": orgs["golden_id"], "name": orgs["organization_name"],
                                  **_party(orgs), **_place(orgs)}),
        "contacts": pd.DataFrame({
            "external_id": people["golden_id"],
            "title": people["title"], "first_name": people["first_name"], "middle_name": people["middle_name"],
            "last_name": people["last_name"], "suffix": people["suffix"], "company": people["organization_name"],
            **_party(people), **_place(people),
            "birth_date": people["birth_date"],
            "email_opt_in": people["email_opt_in"], "do_not_contact": people["do_not_contact"],
        }),
    }


def _party(frame: pd.DataFrame) -> dict[str, pd.Series]:
    out = {}
    for many, one in (("emails", "email"), ("phones", "phone")):
        values = frame[many]
        out[one] = values.str[0]
        more = values.str.len() > 1  # JSON only for the few with a second address or number
        out[f"other_{many}"] = pd.Series(None, index=values.index, dtype=object)
        out[f"other_{many}"][more] = values[more].map(lambda v: json.dumps(v[1:]))
    return out


def _place(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {c: frame[c] for c in ("street", "city", "region", "postcode", "country")}


def related_rows(project: Project, ws: Workspace, golden_ids: pd.Series) -> dict[str, pd.DataFrame]:
    """Related records of these golden records, per target entity, pointing at their parent.

    ``contact_key``/``account_key`` carry the parent's golden id; ``contact_id``/``account_id``
    its target id from ``id_map`` (missing while the parent is not loaded).
    """
    rel = read_table(ws, related)
    if rel.empty:
        return {}
    parents = read_table(ws, xref, ["record_key", "golden_id"]).set_index("record_key")["golden_id"]
    rel["golden_id"] = rel["parent_record_key"].map(parents)
    rel = rel[rel["golden_id"].isin(set(golden_ids))]
    ids = ws.frame(sa.select(id_map.c.entity, id_map.c.key, id_map.c.target_id)
                   .where(id_map.c.entity.in_(GOLDEN_ENTITIES)))
    out: dict[str, list[pd.DataFrame]] = {}
    for kind, group in rel.groupby("kind"):
        entity = kind if kind in RELATED_ENTITIES else "activities"
        fields = _related_fields(project, group["source"].iloc[0], str(kind))
        data = pd.DataFrame(list(group["data"]), index=group.index)
        rows = pd.DataFrame({"external_id": group["related_key"]})
        for parent in GOLDEN_ENTITIES:
            known = ids[ids["entity"] == parent].set_index("key")["target_id"]
            owner = group["golden_id"].where(group["golden_id"].isin(known.index))
            rows[f"{parent[:-1]}_key"] = owner
            rows[f"{parent[:-1]}_id"] = pd.to_numeric(owner.map(known), errors="coerce").astype("Int64")
        for col in RELATED_COLUMNS:
            src = fields.get(col, col)
            rows[col] = data[src].astype(object) if src in data else None
        rows["amount"] = pd.to_numeric(rows["amount"], errors="coerce")
        rows["data"] = [json.dumps(d, ensure_ascii=False, default=str) for d in group["data"]]
        rows["parent"] = group["golden_id"]
        out.setdefault(entity, []).append(rows)
    return {e: pd.concat(parts).sort_values("external_id") for e, parts in out.items()}


def _related_fields(project: Project, source: str, kind: str) -> dict[str, str]:
    spec = project.source(source).options.related
    for name, rel in spec.items():
        if (getattr(rel, "kind", None) or name) == kind:
            return dict(getattr(rel, "fields", {}) or {})
    return {}


def phase_fingerprint(project: Project, ws: Workspace, phase: str) -> str:
    """What a phase's rows depend on: the last golden stage that ran and the configuration."""
    last_golden = ws.scalar(sa.select(sa.func.max(stages.c.run_id)).where(
        stages.c.stage == "golden", stages.c.status == "done"))
    return hashlib.sha256(f"{phase}|{last_golden}|{project.config_hash()}".encode()).hexdigest()


def load_phase(project: Project, ws: Workspace, run_id: str, phase: str) -> PhaseResult:
    """Load one phase's golden records, then their related records, into the target."""
    check_phase(project, phase)
    target = with_retry(lambda: open_target(project.config.target, project.dir), "open the target")
    with_retry(target.preflight, "check the target")
    ledger = PhaseLedger(ws, run_id, phase)
    result = PhaseResult(phase)
    fingerprint = phase_fingerprint(project, ws, phase)
    if ledger.fingerprint_matches(fingerprint):
        counts = ws.frame(sa.select(id_map.c.entity, sa.func.count().label("n"))
                          .where(id_map.c.phase == phase).group_by(id_map.c.entity))
        for entity, n in zip(counts["entity"], counts["n"]):
            result.add("unchanged", entity, n)
        log.info("load %s: already loaded from the same golden records; nothing to send", phase)
        return result
    frame = phased_golden(project, ws)
    mine = frame[frame["phase"] == phase].sort_values("golden_id")
    loader = _PhaseLoader(project, target, ledger, result)
    for entity, rows in golden_rows(mine).items():
        loader.load(entity, rows)
    for entity, rows in related_rows(project, ws, mine["golden_id"]).items():
        orphan = rows["contact_key"].isna() & rows["account_key"].isna()
        ledger.unprocessed(entity, rows.loc[orphan, "external_id"].tolist(),
                           [f"parent {p} is not in the target" for p in rows.loc[orphan, "parent"]])
        result.add("unprocessed", entity, int(orphan.sum()))
        loader.load(entity, rows[~orphan].drop(columns=["parent"]))
    complete = result.total("failed") == 0 and result.total("unprocessed") == 0
    ledger.mark_loaded(fingerprint if complete else None)
    return result


class _PhaseLoader:
    """Sends one phase's rows, entity by entity, batch by batch."""

    def __init__(self, project: Project, target: Target, ledger: PhaseLedger, result: PhaseResult):
        self.target = target
        self.ledger = ledger
        self.result = result
        self.batch_size = project.config.target.batch_size

    def load(self, entity: str, rows: pd.DataFrame) -> None:
        """Send the rows of one entity that are new or changed since they were last loaded."""
        if rows.empty:
            return
        if entity not in self.target.entities():
            self.result.add("skipped", entity, len(rows))
            return
        rows = rows.set_index(rows["external_id"].to_numpy())
        sums = self.target.checksums(entity, rows)
        known = self.ledger.known(entity)
        same = sums == known["checksum"].reindex(sums.index)
        self.result.add("unchanged", entity, same.sum())
        todo = rows[~same.to_numpy()]
        if todo.empty:
            log.info("load %s %s: nothing changed since the last load", self.ledger.phase, entity)
            return
        mine = known[known["phase"] == self.ledger.phase]
        owned = set(mine.index[mine["action"] == CREATED]) | self.ledger.crashed_new_keys(entity)
        imaged = set(mine.index[mine["action"] == UPDATED])
        with progress(f"load {self.ledger.phase} {entity}", len(todo)) as advance:
            for batch_no, start in enumerate(range(0, len(todo), self.batch_size)):
                batch = todo.iloc[start:start + self.batch_size]
                self._batch(entity, batch_no, batch, sums.loc[batch.index], set(known.index), owned, imaged)
                advance(len(batch))
        self.ledger.finish(entity)

    def _batch(self, entity: str, batch_no: int, batch: pd.DataFrame, sums: pd.Series, known: set[str],
               owned: set[str], imaged: set[str]) -> None:
        state: dict[str, object] = {}

        def record(plan: BatchPlan) -> None:
            state["ledger_id"] = self.ledger.record(entity, batch_no, sums, plan, owned)
            state["plan"] = plan
            # A retry after an ambiguous commit must still know these rows are this phase's own.
            owned.update(plan.new)

        what = f"load {self.ledger.phase} {entity} batch {batch_no}"
        results = with_retry(lambda: self.target.write(entity, batch, sums, record, known), what)
        plan: BatchPlan = state["plan"]  # type: ignore[assignment]
        identical = set(plan.unchanged)
        changed = set(plan.changed) | imaged
        keys = results["external_id"]
        actions = pd.Series([CREATED if k in owned else UPDATED if k in changed else ADOPTED for k in keys],
                            index=keys.to_numpy())
        results["created"] = (actions == CREATED).to_numpy()
        self.ledger.commit(entity, state["ledger_id"], results, sums, actions)  # type: ignore[arg-type]
        ok = results["status"] == "success"
        fresh = ok & (actions == CREATED).to_numpy() & ~keys.isin(known)
        same = ok & keys.isin(identical)
        self.result.add("created", entity, fresh.sum())
        self.result.add("unchanged", entity, same.sum())
        self.result.add("updated", entity, (ok & ~fresh & ~same).sum())
        self.result.add("failed", entity, (~ok).sum())
        for row in results[~ok].head(5).itertuples(index=False):
            log.warning("%s: %s rejected by the target: %s", what, row.external_id, row.reason)
