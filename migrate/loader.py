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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON

from connectors.prefetch import prefetched
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
#: Golden records read per query (each is one JSON text built by the workspace database).
GOLDEN_CHUNK = 100_000
_LIST = pa.list_(pa.string())
_FLAGS = ("email_opt_in", "do_not_contact")
#: The reader runs beside the load in a thread of its own: Arrow's pool would double its CPU time for no gain.
_ONE_THREAD = pa_json.ReadOptions(use_threads=False)
#: Golden columns the loader reads (lineage and identifiers are not loaded: decoding them would dominate).
_GOLDEN_JSON = pa.schema([("golden_id", pa.string()), ("member_count", pa.int64()),
                          *((a, _LIST if a in LIST_FIELDS else pa.int64() if a in _FLAGS else pa.string())
                            for a in GOLDEN_ATTRIBUTES if a != "identifiers")])
#: The same columns keyed by position in the JSON text: names would be a third of what is built and parsed.
_GOLDEN_KEYED = pa.schema([pa.field(str(i), f.type) for i, f in enumerate(_GOLDEN_JSON)])


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
                matches = pd.Series(frame.eval(p.where, engine="python"), index=frame.index)
                # A missing value never matches (Arrow-backed columns answer NA where Python said False).
                hit = todo & matches.fillna(False).astype(bool)
            except Exception as exc:  # a predicate is user text: any failure is a config problem
                raise ConfigError(f"phase {p.name!r}: predicate {p.where!r} failed: {exc}") from None
        result[hit] = p.name
        todo &= ~hit
    return result


def golden_frame(ws: Workspace, with_sources: bool = False) -> pd.DataFrame:
    """Active golden records (Arrow-backed columns); with ``with_sources``, also ``source`` and ``sources``.

    ``source`` is the leading record's source; ``sources`` the sorted, comma-joined set of
    member sources, so a phase can say ``sources.str.contains('erp')``. List attributes
    (``emails``, ``phones``) are Arrow lists; :func:`decode_lists` makes Python lists of them.
    """
    tables = list(golden_tables(ws))
    frame = _arrow_frame(pa.concat_tables(tables) if tables else _GOLDEN_JSON.empty_table())
    return _with_sources(frame, _member_sources(ws)) if with_sources else frame


def golden_tables(ws: Workspace) -> Iterator[pa.Table]:
    """Active golden records in chunks of :data:`GOLDEN_CHUNK`, in ``golden_id`` order, read one chunk ahead.

    The workspace database builds each chunk as one JSON text (a few Python objects instead of
    one per value) and Arrow's C++ reader parses it; both let go of the GIL, so the next
    chunk is read while the caller works on this one.
    """
    def chunks() -> Iterator[pa.Table]:
        after = ""
        while text := _golden_json(ws, after):
            table = pa_json.read_json(pa.BufferReader(text.encode()), read_options=_ONE_THREAD,
                                      parse_options=pa_json.ParseOptions(explicit_schema=_GOLDEN_KEYED))
            table = table.rename_columns(_GOLDEN_JSON.names)
            after = pc.max(table["golden_id"]).as_py()
            yield table.sort_by("golden_id")

    return prefetched(chunks())


def _golden_json(ws: Workspace, after: str) -> str | None:
    """Up to :data:`GOLDEN_CHUNK` active golden records after ``after`` as JSON lines, one text."""
    postgres = ws.engine.dialect.name == "postgresql"
    page = (sa.select(golden).where(golden.c.status == "active", golden.c.golden_id > after)
            .order_by(golden.c.golden_id).limit(GOLDEN_CHUNK).subquery())
    pairs = []
    for key, name in zip(_GOLDEN_KEYED.names, _GOLDEN_JSON.names):
        col = page.c[name]
        if name in LIST_FIELDS:  # stored as JSON text: embedded as the array it is
            col = sa.cast(col, JSON) if postgres else sa.func.json(col)
        elif name in _FLAGS:
            col = sa.cast(col, sa.Integer)
        pairs += [sa.literal(key), col]
    if postgres:
        text = sa.func.string_agg(sa.cast(sa.func.json_build_object(*pairs), sa.Text), "\n")
    else:
        text = sa.func.group_concat(sa.func.json_object(*pairs), "\n")
    return ws.scalar(sa.select(text))


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    """Golden records as a frame of Arrow-backed columns (no copy), flags as booleans."""
    for col in _FLAGS:
        table = table.set_column(table.schema.get_field_index(col), col, pc.cast(table[col], pa.bool_()))
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _member_sources(ws: Workspace) -> tuple[pd.Series, pd.Series]:
    """Per golden id: the source of its leading record, and its members' sources sorted and comma-joined."""
    members = ws.frame(sa.select(xref.c.golden_id, xref.c.role, records.c.source)
                       .select_from(xref.join(records, records.c.record_key == xref.c.record_key)))
    anchor = members[members["role"] == "anchor"].drop_duplicates("golden_id").set_index("golden_id")["source"]
    joined = members.drop_duplicates(["golden_id", "source"]).sort_values("source").groupby("golden_id")["source"]
    return anchor, joined.agg(",".join)


def _with_sources(frame: pd.DataFrame, sources: tuple[pd.Series, pd.Series]) -> pd.DataFrame:
    anchor, joined = sources
    return frame.assign(source=frame["golden_id"].map(anchor).astype(object),
                        sources=frame["golden_id"].map(joined).fillna("").astype(object))


def decode_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its list attributes as Python lists (a missing list: empty), as phase predicates see them."""
    out = frame.copy()
    for col in LIST_FIELDS:
        out[col] = pd.Series([v or [] for v in pa.array(out[col]).to_pylist()], index=out.index, dtype=object)
    return out


def phased_chunks(project: Project, ws: Workspace) -> Iterator[pd.DataFrame]:
    """Active golden records with their ``phase`` (sticky to the phase a record was loaded in), chunk by chunk."""
    predicates = " ".join(p.where or "" for p in project.config.phases)
    sources = _member_sources(ws) if "source" in predicates else None
    loaded = ws.frame(sa.select(id_map.c.key, id_map.c.phase).where(id_map.c.entity.in_(GOLDEN_ENTITIES)))
    sticky = loaded.set_index("key")["phase"] if len(loaded) else pd.Series(dtype=object)
    for table in golden_tables(ws):
        frame = _arrow_frame(table)
        if sources is not None:
            frame = _with_sources(frame, sources)
        judged = decode_lists(frame) if any(col in predicates for col in LIST_FIELDS) else frame
        frame["phase"] = assign_phases(project, judged, sticky)
        yield frame


def phased_golden(project: Project, ws: Workspace) -> pd.DataFrame:
    """Active golden records with their ``phase``, all at once (plans and reconciliation)."""
    chunks = list(phased_chunks(project, ws))
    if chunks:
        return pd.concat(chunks, ignore_index=True)
    return _arrow_frame(_GOLDEN_JSON.empty_table()).assign(phase=pd.Series(dtype=object))


def check_phase(project: Project, phase: str) -> None:
    """A phase name that is not in migration.yaml is a usage error."""
    names = [p.name for p in project.config.phases]
    if phase not in names:
        raise ConfigError(f"no phase {phase!r} in migration.yaml (phases: {', '.join(names)})")


def golden_rows(mine: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A phase's golden records as rows of ``accounts`` (organisations) and ``contacts`` (people)."""
    is_org = mine["entity"].eq("organization").fillna(False) | (mine["first_name"].isna() & mine["last_name"].isna())
    orgs, people = mine[is_org.to_numpy(bool)], mine[~is_org.to_numpy(bool)]
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
    """Primary e-mail and phone, and the others as JSON text (exactly ``json.dumps`` of the rest of the list)."""
    out = {}
    for many, one in (("emails", "email"), ("phones", "phone")):
        values = pc.fill_null(pa.array(frame[many]), pa.scalar([], _LIST))
        empty = pc.equal(pc.list_value_length(values), 0)
        out[one] = _arrow_series(pc.list_element(pc.if_else(empty, pa.scalar([None], _LIST), values), 0), frame.index)
        out[f"other_{many}"] = _json_rest(values, frame.index)
    return out


def _json_rest(values: pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """``json.dumps(v[1:])`` per list (None when there is no second element), joined by Arrow.

    Lists of plain ASCII text (no quote, backslash or control character) need no escaping, so
    their JSON is the elements joined by ``", "`` in brackets; the rare others go through json.
    """
    rest = pc.list_slice(values, 1)
    flat = pc.list_flatten(rest)
    odd = pc.fill_null(pc.match_substring_regex(flat, r"[^\x20-\x21\x23-\x5b\x5d-\x7e]"), True)
    parents = pc.list_parent_indices(rest).to_numpy()
    escaped = np.bincount(parents[odd.to_numpy(zero_copy_only=False)], minlength=len(values)) > 0
    text = pc.binary_join_element_wise('["', pc.binary_join(rest, '", "'), '"]', "")
    out = _arrow_series(pc.if_else(pc.greater(pc.list_value_length(rest), 0), text, pa.scalar(None, pa.string())),
                        index)
    out[escaped] = [json.dumps(v) for v in rest.filter(pa.array(escaped)).to_pylist()]
    return out


def _arrow_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(values), index=index)


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
    loader = _PhaseLoader(project, target, ledger, result)

    def prepared() -> Iterator[tuple[pd.Series, list[_Rows]]]:
        for chunk in phased_chunks(project, ws):
            mine = chunk[(chunk["phase"] == phase).to_numpy()]
            yield mine["golden_id"], [loader.prepare(entity, rows) for entity, rows in golden_rows(mine).items()]

    try:
        golden_ids = []
        # The next chunk's rows and checksums are made in a thread while this one's go to the target.
        for ids, parts in prefetched(prepared()):
            golden_ids.append(ids)
            for rows in parts:
                loader.send(rows)
        loader.finish()
        mine_ids = pd.concat(golden_ids) if golden_ids else pd.Series(dtype=object)
        for entity, rows in related_rows(project, ws, mine_ids).items():
            orphan = rows["contact_key"].isna() & rows["account_key"].isna()
            ledger.unprocessed(entity, rows.loc[orphan, "external_id"].tolist(),
                               [f"parent {p} is not in the target" for p in rows.loc[orphan, "parent"]])
            result.add("unprocessed", entity, int(orphan.sum()))
            loader.send(loader.prepare(entity, rows[~orphan].drop(columns=["parent"])))
            loader.finish()
    finally:
        loader.close()
    complete = result.total("failed") == 0 and result.total("unprocessed") == 0
    ledger.mark_loaded(fingerprint if complete else None)
    return result


@dataclass(frozen=True)
class _Rows:
    """Rows of one entity ready to send: by external id, with their checksums (None: the target does not take them)."""

    entity: str
    rows: pd.DataFrame
    sums: pd.Series | None


@dataclass
class _Entity:
    """What the ledger knows of one entity while a phase sends it."""

    known: pd.DataFrame  # id_map rows by key
    keys: set[str]  # their keys
    owned: set[str]  # created by this phase (a crashed batch's too)
    imaged: set[str]  # changed by this phase (before-image kept)
    batches: int = 0


class _PhaseLoader:
    """Sends one phase's rows batch by batch, entity by entity, as they come.

    A batch's workspace commit (step 3 of the ledger protocol) runs in a thread while the
    next batch goes to the target; the next batch's record (step 1) waits for it, so the
    ledger sees the same order of commits as without the thread.
    """

    def __init__(self, project: Project, target: Target, ledger: PhaseLedger, result: PhaseResult):
        self.target = target
        self.ledger = ledger
        self.result = result
        self.batch_size = project.config.target.batch_size
        self._entities: dict[str, _Entity] = {}
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-migrate-ledger")
        self._pending: Future[None] | None = None

    def prepare(self, entity: str, rows: pd.DataFrame) -> _Rows:
        """An entity's rows by external id with their checksums (none where the target does not take the entity).

        Reads no state of the load, so it may run in another thread while earlier rows are sent.
        """
        if rows.empty or entity not in self.target.entities():
            return _Rows(entity, rows, None)
        rows = rows.set_index(rows["external_id"].to_numpy())
        return _Rows(entity, rows, self.target.checksums(entity, rows))

    def send(self, prepared: _Rows) -> None:
        """Send the rows of an entity that are new or changed since they were last loaded."""
        entity, rows, sums = prepared.entity, prepared.rows, prepared.sums
        if rows.empty:
            return
        if sums is None:
            self.result.add("skipped", entity, len(rows))
            return
        state = self._entity(entity)
        same = (sums == state.known["checksum"].reindex(sums.index)).to_numpy() if len(state.known) else \
            np.zeros(len(sums), dtype=bool)
        self.result.add("unchanged", entity, same.sum())
        todo, sums = rows[~same], sums[~same]
        if todo.empty:
            return
        with progress(f"load {self.ledger.phase} {entity}", len(todo)) as advance:
            for start in range(0, len(todo), self.batch_size):
                batch = todo.iloc[start:start + self.batch_size]
                self._batch(entity, state, batch, sums.iloc[start:start + self.batch_size])
                advance(len(batch))

    def finish(self) -> None:
        """Every batch sent so far is committed: crashed attempts of those entities are now superseded."""
        self._settle()
        for entity, state in self._entities.items():
            if state.batches:
                self.ledger.finish(entity)
            else:
                log.info("load %s %s: nothing changed since the last load", self.ledger.phase, entity)
        self._entities.clear()

    def close(self) -> None:
        """Wait for the workspace commit still running, then stop its thread."""
        try:
            self._settle()
        finally:
            self._committer.shutdown()

    def _entity(self, entity: str) -> _Entity:
        if entity not in self._entities:
            known = self.ledger.known(entity)
            mine = known[known["phase"] == self.ledger.phase]
            owned = set(mine.index[mine["action"] == CREATED]) | self.ledger.crashed_new_keys(entity)
            self._entities[entity] = _Entity(known, set(known.index), owned, set(mine.index[mine["action"] == UPDATED]))
        return self._entities[entity]

    def _settle(self) -> None:
        """Wait for the previous batch's workspace commit (and raise its error, if it failed)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _batch(self, entity: str, state: _Entity, batch: pd.DataFrame, sums: pd.Series) -> None:
        batch_no = state.batches
        state.batches += 1
        held: dict[str, object] = {}

        def record(plan: BatchPlan) -> None:
            self._settle()
            held["ledger_id"] = self.ledger.record(entity, batch_no, sums, plan, state.owned)
            held["plan"] = plan
            # A retry after an ambiguous commit must still know these rows are this phase's own.
            state.owned.update(plan.new)

        what = f"load {self.ledger.phase} {entity} batch {batch_no}"
        results = with_retry(lambda: self.target.write(entity, batch, sums, record, state.keys), what)
        plan: BatchPlan = held["plan"]  # type: ignore[assignment]
        changed = set(plan.changed) | state.imaged
        keys = results["external_id"]
        actions = pd.Series([CREATED if k in state.owned else UPDATED if k in changed else ADOPTED for k in keys],
                            index=keys.to_numpy())
        results["created"] = (actions == CREATED).to_numpy()
        self._settle()
        self._pending = self._committer.submit(self.ledger.commit, entity, held["ledger_id"], results, sums, actions)
        ok = results["status"] == "success"
        fresh = ok & (actions == CREATED).to_numpy() & ~np.array([k in state.keys for k in keys], dtype=bool)
        same = ok & keys.isin(plan.unchanged)
        self.result.add("created", entity, fresh.sum())
        self.result.add("unchanged", entity, same.sum())
        self.result.add("updated", entity, (ok & ~fresh & ~same).sum())
        self.result.add("failed", entity, (~ok).sum())
        for row in results[~ok].head(5).itertuples(index=False):
            log.warning("%s: %s rejected by the target: %s", what, row.external_id, row.reason)
