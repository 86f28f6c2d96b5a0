"""Golden records: stable ids across runs, attributes with lineage, steward overrides, and their history."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mappings.canonical import GOLDEN_ATTRIBUTES, LIST_FIELDS
from migrate.errors import EXIT_USAGE, MigrateError
from migrate.project import Project
from migrate.review import constraints, decision_log, decision_text, refresh_queue
from migrate.workspace import (Workspace, clusters, encode_frame, golden, golden_events, now, read_table, records,
                               review_items, xref)
from rules.survive import survive

log = logging.getLogger("crm_migrate")

EVENT_COLUMNS = ["golden_id", "event", "other_id", "detail"]
#: Lineage rule of a value a steward set (a pick or an override).
OVERRIDE = "steward_override"
#: Decisions shown in the report's decision log (the newest).
REPORT_DECISIONS = 100


class UnknownGoldenError(MigrateError):
    """No golden record with that id."""

    exit_code = EXIT_USAGE


@dataclass
class IdAssignment:
    """Output of :func:`assign_golden_ids`."""

    ids: pd.Series          # cluster_id -> golden_id
    retired: pd.DataFrame   # golden_id, retired_into (None when every member is gone)
    events: pd.DataFrame    # golden_id, event, other_id, detail
    origins: pd.Series      # record_key -> origin_id: the golden id the record held before it was merged in


def new_golden_id(seed: str, taken: Collection[str], reclaimable: Collection[str] = ()) -> str:
    """A deterministic id from a cluster's smallest member key; salted while taken.

    Deterministic ids mean two clean runs on the same data give the same ids, so a target
    loaded from either compares row for row. An id in ``reclaimable`` (retired, and born
    from the same seed) is given back rather than salted past.

    Example:
        >>> new_golden_id("erp:1", set())
        'G-50f9c29f9f6b'
    """
    salt = 0
    while True:
        digest = hashlib.sha1(f"{seed}#{salt}".encode() if salt else seed.encode()).hexdigest()[:12]
        candidate = f"G-{digest}"
        if candidate in reclaimable or candidate not in taken:
            return candidate
        salt += 1


def assign_golden_ids(clusters: pd.DataFrame, previous: pd.DataFrame, golden_ages: pd.DataFrame,
                      first_seen: pd.Series) -> IdAssignment:
    """Give every cluster a golden id that is stable across runs.

    * an unchanged or growing cluster keeps its id;
    * each old id goes to the cluster now holding its oldest member: a record it held
      before any merge brought others in (a *home* member, not a *guest*), then the record
      first seen, then the smaller key. So when a cluster splits, the part holding the
      oldest member keeps the id and the rest get new ones;
    * when one cluster wins several ids (a merge), the oldest golden record (then the
      larger, then the smaller id) keeps its id and the others are retired into it; their
      records become guests that remember the id they came from (``origin_id``);
    * an id whose records are all gone is retired pointing nowhere;
    * any other cluster is new: it takes back the retired id its guests came from (the
      most recently retired first), so an unmerge gives both sides their ids back, or
      else :func:`new_golden_id` of its smallest key.

    Args:
        clusters: ``record_key, cluster_id`` for this run.
        previous: ``record_key, golden_id`` and optionally ``origin_id`` from the last run (the xref).
        golden_ages: ``golden_id, created_run, member_count, status`` and optionally
            ``updated_run`` (when a retired record was retired) of existing golden records.
        first_seen: record_key -> run id when the record was first staged (age of a member).
    """
    members = clusters.merge(previous, on="record_key", how="left")
    origin = members["origin_id"].astype(object) if "origin_id" in members else members["golden_id"]
    members["origin_id"] = origin.where(origin.notna(), members["golden_id"])
    members["guest"] = members["origin_id"] != members["golden_id"]
    members["first_seen"] = members["record_key"].map(first_seen).fillna("~")  # unknown age: youngest
    members = members.sort_values(["guest", "first_seen", "record_key"], kind="stable")
    claims = members.dropna(subset=["golden_id"])
    won = claims.groupby("golden_id", sort=False).head(1)[["golden_id", "cluster_id"]]
    ages = golden_ages.set_index("golden_id")
    won = won.assign(
        created_run=won["golden_id"].map(ages["created_run"]).fillna("~"),
        member_count=won["golden_id"].map(ages["member_count"]).fillna(0),
    ).sort_values(["created_run", "member_count", "golden_id"], ascending=[True, False, True], kind="stable")
    survivors = won.groupby("cluster_id", sort=False).head(1).set_index("cluster_id")["golden_id"]
    merged_away = won[~won["golden_id"].isin(survivors)]
    retired = pd.DataFrame({"golden_id": merged_away["golden_id"].to_numpy(),
                            "retired_into": merged_away["cluster_id"].map(survivors).to_numpy()})
    events = [(into, "merged", gid, "absorbed a retired golden record") for gid, into in retired.to_numpy()]
    events += [(gid, "retired", into, "merged into the survivor") for gid, into in retired.to_numpy()]

    status = ages["status"]
    gone = sorted(set(status[status == "active"].index) - set(won["golden_id"]))
    if gone:
        retired = pd.concat([retired, pd.DataFrame({"golden_id": gone, "retired_into": None})], ignore_index=True)
        events += [(gid, "retired", None, "no source record left") for gid in gone]

    # The smallest key per cluster (a sort, not a per-group min over strings).
    seeds = clusters.sort_values("record_key").drop_duplicates("cluster_id").set_index("cluster_id")[
        "record_key"].sort_index()
    ids = survivors.reindex(seeds.index).astype(object)
    fresh = ids[ids.isna()].index
    taken = set(ages.index) | set(survivors)
    reclaimable = set(status[status == "retired"].index)
    split_from = claims.drop_duplicates("cluster_id").set_index("cluster_id")["golden_id"].to_dict()
    homes = _homes(members[members["cluster_id"].isin(fresh)], reclaimable, ages)
    new_ids = []
    for seed, cluster_id in zip(seeds[fresh], fresh):  # new clusters only: few per run after the first
        gid = next((h for h in homes.get(cluster_id, ()) if h in reclaimable), None) or \
            new_golden_id(seed, taken, reclaimable)
        taken.add(gid)
        reclaimable.discard(gid)
        new_ids.append(gid)
        origin_id = split_from.get(cluster_id)
        if gid in ages.index:
            events.append((gid, "restored", origin_id, "its records are apart again; the earlier id is back"))
        elif origin_id is not None:
            events.append((gid, "split", origin_id, "split off from an existing golden record"))
        else:
            events.append((gid, "created", None, "new customer"))
    ids[fresh] = new_ids

    now_id = members["cluster_id"].map(ids)
    # Guests keep the id they came from while they stay, or when the id they are in is merged away.
    absorbed = members["golden_id"].map(dict(retired.dropna().to_numpy())) == now_id
    stays = (members["golden_id"] == now_id) | absorbed
    origins = pd.Series(members["origin_id"].where(stays, now_id).to_numpy(), index=members["record_key"].to_numpy())
    # Grown: a survivor gained a record it did not hold, other than through an id it absorbed.
    gained = members[~stays & members["cluster_id"].isin(survivors.index)]
    grown = sorted(set(gained["cluster_id"].map(survivors)))
    events += [(gid, "grown", None, "source records joined") for gid in grown]
    event_frame = pd.DataFrame(events, columns=EVENT_COLUMNS)
    return IdAssignment(ids.rename("golden_id"), retired, event_frame, origins.rename("origin_id"))


def _homes(members: pd.DataFrame, reclaimable: set[str], ages: pd.DataFrame) -> dict[str, list[str]]:
    """Per new cluster, the retired ids its guests came from: the most recently retired first."""
    guests = members[members["guest"] & members["origin_id"].isin(reclaimable)]
    if guests.empty:
        return {}
    retired_run = guests["origin_id"].map(ages["updated_run"]) if "updated_run" in ages else ""
    ranked = guests.assign(_retired=retired_run).sort_values(["cluster_id", "_retired"], ascending=[True, False],
                                                              kind="stable")
    return ranked.groupby("cluster_id", sort=False)["origin_id"].agg(lambda s: list(dict.fromkeys(s))).to_dict()


def golden_stage(project: Project, ws: Workspace, run_id: str) -> dict[str, int]:
    """Survivorship, steward overrides and stable ids: clusters in, golden records, xref and history out.

    Attribute conflicts (values only the final tiebreak chose between) go to the review queue.
    """
    recs = read_table(ws, records, ["record_key", "source", "source_updated_at", "first_seen_run",
                                    *GOLDEN_ATTRIBUTES])
    recs = recs.merge(read_table(ws, clusters), on="record_key", how="left")
    recs["cluster_id"] = recs["cluster_id"].fillna(recs["record_key"])
    survive_cfg = project.config.rules.survive
    survived = survive(recs, survive_cfg.rules_for, anchor_rules=survive_cfg.rules_for("default"))

    previous = read_table(ws, xref, ["record_key", "golden_id", "origin_id"])
    before = read_table(ws, golden, ["golden_id", "status", "retired_into", "created_run", "updated_run",
                                     "member_count", "row_hash"])
    first_seen = recs.set_index("record_key")["first_seen_run"]
    assignment = assign_golden_ids(recs[["record_key", "cluster_id"]], previous, before, first_seen)

    frame = survived.golden.copy()
    frame["golden_id"] = assignment.ids.reindex(frame.index).to_numpy()
    frame["member_count"] = recs.groupby("cluster_id").size().reindex(frame.index).to_numpy()
    attrs = [a for a in GOLDEN_ATTRIBUTES if a in frame]
    lineage = dict(zip(frame.index, _lineage(survived.from_record[attrs], survived.rule[attrs])))
    overridden = _apply_overrides(frame, lineage, recs, _resolve_overrides(ws, assignment, before, recs))
    frame["lineage"] = [lineage[c] for c in frame.index]
    frame["row_hash"] = pd.util.hash_pandas_object(
        frame[[*attrs, "member_count"]].astype(str).assign(lineage=[json.dumps(v, sort_keys=True) for v in
                                                                     frame["lineage"]]),
        index=False).map("{:016x}".format).to_numpy()
    old = before.set_index("golden_id")
    frame["created_run"] = frame["golden_id"].map(old["created_run"]).fillna(run_id)
    unchanged = (frame["golden_id"].map(old["row_hash"]) == frame["row_hash"]) & \
        (frame["golden_id"].map(old["status"]) == "active")
    changed = frame[~unchanged].assign(status="active", retired_into=None, updated_run=run_id)

    members = recs[["record_key", "cluster_id"]].copy()
    members["golden_id"] = members["cluster_id"].map(assignment.ids)
    members["origin_id"] = members["record_key"].map(assignment.origins)
    members["role"] = "merged"
    members.loc[members["record_key"].isin(survived.anchors), "role"] = "anchor"
    with ws.begin() as conn:
        ws.upsert(conn, golden, encode_frame(changed.reset_index(drop=True), golden))
        for r in assignment.retired.itertuples(index=False):
            conn.execute(sa.update(golden).where(golden.c.golden_id == r.golden_id).values(
                status="retired", retired_into=r.retired_into, updated_run=run_id))
        conn.execute(sa.delete(xref))
        ws.insert(conn, xref, encode_frame(members, xref))
        events = assignment.events.assign(run_id=run_id, at=now())
        ws.insert(conn, golden_events, encode_frame(events, golden_events))

    conflicts = survived.conflicts.assign(golden_id=survived.conflicts["cluster_id"].map(assignment.ids))
    conflicts = conflicts[~pd.MultiIndex.from_frame(conflicts[["golden_id", "attribute"]]).isin(overridden)]
    open_conflicts = refresh_queue(project, ws, run_id, None, None, conflicts=conflicts)
    counts = {"golden": len(frame), "changed": len(changed), "retired": len(assignment.retired),
              "overridden": len(overridden), "open_conflicts": open_conflicts}
    log.info("golden: %s golden records (%s new or changed, %s retired, %s steward overrides, %s open conflicts)",
             *(f"{v:,}" for v in counts.values()))
    return counts


def _lineage(from_record: pd.DataFrame, rule: pd.DataFrame) -> list[dict]:
    """Per golden record: {attribute: {"from_record_key": ..., "rule": ...}} for every decided value."""
    out = []
    attrs = list(from_record.columns)
    for keys, rules in zip(from_record.itertuples(index=False), rule.itertuples(index=False)):
        out.append({a: {"from_record_key": k, "rule": r} for a, k, r in zip(attrs, keys, rules) if isinstance(k, str)})
    return out


def _resolve_overrides(ws: Workspace, assignment: IdAssignment, before: pd.DataFrame,
                       recs: pd.DataFrame) -> pd.DataFrame:
    """Active overrides with the cluster each applies to now, newest per golden record and attribute.

    An override follows its golden record through merges (``retired_into``); when that
    record is gone, it follows the record that led it when the steward decided.
    """
    overrides = constraints(ws).overrides
    if overrides.empty:
        return overrides.assign(cluster_id=None)
    successor = dict(zip(before["golden_id"], before["retired_into"]))
    successor.update(zip(assignment.retired["golden_id"], assignment.retired["retired_into"]))
    cluster_of = pd.Series(assignment.ids.index, index=assignment.ids.to_numpy())
    record_cluster = recs.set_index("record_key")["cluster_id"]

    def follow(golden_id: str | None) -> str | None:
        seen: set[str] = set()
        while isinstance(golden_id, str) and golden_id not in cluster_of.index and golden_id not in seen:
            seen.add(golden_id)
            golden_id = successor.get(golden_id)
        return cluster_of.get(golden_id) if isinstance(golden_id, str) else None

    overrides["cluster_id"] = [follow(g) or record_cluster.get(k) for g, k in
                               zip(overrides["golden_id"], overrides["record_key"])]
    overrides = overrides.dropna(subset=["cluster_id"]).sort_values("decision_id")
    return overrides.drop_duplicates(["cluster_id", "attribute"], keep="last")


def _apply_overrides(frame: pd.DataFrame, lineage: dict[str, dict], recs: pd.DataFrame,
                     overrides: pd.DataFrame) -> pd.MultiIndex:
    """Set each overridden value and its lineage; returns the (golden_id, attribute) pairs overridden."""
    by_key = recs.set_index("record_key")
    for o in overrides.itertuples(index=False):  # steward decisions: a handful, not one per record
        if frame[o.attribute].dtype != object:
            frame[o.attribute] = frame[o.attribute].astype(object)
        frame.at[o.cluster_id, o.attribute] = o.value
        source = o.source_record if isinstance(o.source_record, str) and o.source_record in by_key.index \
            and by_key.at[o.source_record, "cluster_id"] == o.cluster_id \
            and _same(by_key.at[o.source_record, o.attribute], o.value) else None
        lineage[o.cluster_id][o.attribute] = {"from_record_key": source, "rule": OVERRIDE, "who": o.who,
                                              "at": o.at, "decision_id": int(o.decision_id)}
    return pd.MultiIndex.from_arrays([frame.loc[overrides["cluster_id"], "golden_id"].to_numpy(),
                                      overrides["attribute"].to_numpy()], names=["golden_id", "attribute"])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return a == b
    return not pd.isna(a) and str(a) == str(b)


# --- reading golden records ------------------------------------------------------------------------------------

@dataclass
class GoldenView:
    """A golden record as ``golden show`` prints it."""

    golden_id: str
    status: str
    retired_into: str | None
    attributes: pd.DataFrame   # attribute, value, from_record_key, rule, who, at, held_by
    members: pd.DataFrame      # role and the shown fields of every source record behind it


def golden_record(ws: Workspace, golden_id: str) -> GoldenView:
    """A golden record with the lineage of every value and the source records behind it.

    Raises:
        UnknownGoldenError: no such golden record (exit 2).
    """
    found = read_table(ws, golden, where=golden.c.golden_id == golden_id)
    if found.empty:
        raise UnknownGoldenError(f"no golden record {golden_id!r} (golden ids look like G-50f9c29f9f6b; "
                                 "`crm-migrate review list` and the xref table name them)")
    row = found.iloc[0]
    keys = read_table(ws, xref, where=xref.c.golden_id == golden_id)
    members = read_table(ws, records, ["record_key", "source", *GOLDEN_ATTRIBUTES, "source_updated_at"],
                         where=records.c.record_key.in_(keys["record_key"].tolist()))
    members = keys[["record_key", "role"]].merge(members, on="record_key", how="left").sort_values(
        ["role", "record_key"]).reset_index(drop=True)
    rows = []
    for attribute in GOLDEN_ATTRIBUTES:
        source = row["lineage"].get(attribute)
        if source is None:
            continue
        value = row[attribute]
        rows.append({"attribute": attribute, "value": value, "from_record_key": source.get("from_record_key"),
                     "rule": source.get("rule"), "who": source.get("who"), "at": source.get("at"),
                     "held_by": _held_by(members, attribute, value)})
    attributes = pd.DataFrame(rows, columns=["attribute", "value", "from_record_key", "rule", "who", "at", "held_by"])
    retired_into = row["retired_into"] if isinstance(row["retired_into"], str) else None
    return GoldenView(golden_id, row["status"], retired_into, attributes, members)


def _held_by(members: pd.DataFrame, attribute: str, value: Any) -> list[str]:
    """Which member records hold a golden value (for a list, which hold each of its values)."""
    if attribute not in members:
        return []
    if attribute in LIST_FIELDS:
        return [f"{v}: " + ", ".join(k for k, vs in zip(members["record_key"], members[attribute])
                                     if isinstance(vs, list) and v in vs) for v in value]
    return [k for k, v in zip(members["record_key"], members[attribute]) if _same(v, value)]


def golden_history(ws: Workspace, golden_id: str) -> pd.DataFrame:
    """Everything that happened to a golden record, oldest first: id events and steward decisions.

    Returns:
        ``at, run_id, event, golden_id, other_id, detail``.

    Raises:
        UnknownGoldenError: no such golden record (exit 2).
    """
    golden_record(ws, golden_id)  # raises for an unknown id
    events = read_table(ws, golden_events, where=sa.or_(golden_events.c.golden_id == golden_id,
                                                        golden_events.c.other_id == golden_id))
    members = set(read_table(ws, xref, ["record_key"], where=xref.c.golden_id == golden_id)["record_key"])
    decided = decision_log(ws)
    if len(decided):
        decided = decided[(decided["golden_id"] == golden_id) | decided["record_key_l"].isin(members)
                          | decided["record_key_r"].isin(members)]
    steps = pd.DataFrame({
        "at": decided.get("at", []), "run_id": None,
        "event": [f"decision {int(d)}" for d in decided.get("id", [])],
        "golden_id": decided.get("golden_id", []), "other_id": None,
        "detail": [decision_text(r) for r in decided.to_dict("records")],
    })
    cols = ["at", "run_id", "event", "golden_id", "other_id", "detail"]
    return pd.concat([events[cols], steps[cols]], ignore_index=True).sort_values(
        "at", kind="stable").reset_index(drop=True)


def golden_report(ws: Workspace) -> dict[str, Any]:
    """Figures for the reconciliation report: merges and conflicts per source, the review queue, the decision log.

    (The cluster size distribution is in the report's chart data.)
    """
    roles = ws.frame(sa.select(records.c.source, xref.c.role, sa.func.count().label("n"))
                     .select_from(records.join(xref, xref.c.record_key == records.c.record_key))
                     .group_by(records.c.source, xref.c.role))
    items = read_table(ws, review_items, ["kind", "status", "evidence"])
    sources: dict[str, dict[str, int]] = {}
    for r in roles.itertuples(index=False):
        row = sources.setdefault(r.source, {"records": 0, "merged": 0, "conflicts": 0})
        row["records"] += int(r.n)
        row["merged"] += int(r.n) if r.role == "merged" else 0
    for evidence in items.loc[items["kind"] == "conflict", "evidence"]:
        for source in {k.split(":", 1)[0] for k in json.loads(evidence or "{}").get("keys", [])}:
            sources.setdefault(source, {"records": 0, "merged": 0, "conflicts": 0})["conflicts"] += 1
    review = {k: {s: int(n) for s, n in g["status"].value_counts().items()} for k, g in items.groupby("kind")}
    log_frame = decision_log(ws)
    recent = log_frame.tail(REPORT_DECISIONS).iloc[::-1]
    return {
        "sources": dict(sorted(sources.items())),
        "review": review,
        "decisions": {
            "active": int(log_frame["revoked_at"].isna().sum()) if len(log_frame) else 0,
            "revoked": int(log_frame["revoked_at"].notna().sum()) if len(log_frame) else 0,
            "log": [{"id": int(d["id"]), "at": d["at"], "who": d["who"], "item_id": d["item_id"],
                     "decision": decision_text(d), "revoked": isinstance(d["revoked_at"], str)}
                    for d in recent.to_dict("records")],
        },
    }
