"""Golden records: stable ids across runs, attributes with lineage, and their history."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from mappings.canonical import GOLDEN_ATTRIBUTES
from migrate.project import Project
from migrate.workspace import Workspace, clusters, encode_frame, golden, golden_events, now, read_table, records, xref
from rules.survive import survive

log = logging.getLogger("crm_migrate")

EVENT_COLUMNS = ["golden_id", "event", "other_id", "detail"]


@dataclass
class IdAssignment:
    """Output of :func:`assign_golden_ids`."""

    ids: pd.Series          # cluster_id -> golden_id
    retired: pd.DataFrame   # golden_id, retired_into (None when every member is gone)
    events: pd.DataFrame    # golden_id, event, other_id, detail


def new_golden_id(seed: str, taken: set[str]) -> str:
    """A deterministic id from a cluster's first member key; salted if already taken.

    Deterministic ids mean two clean runs on the same data give the same ids, so a
    target loaded from either compares row for row.

    Example:
        >>> new_golden_id("erp:1", set())
        'G-50f9c29f9f6b'
    """
    salt = 0
    while True:
        digest = hashlib.sha1(f"{seed}#{salt}".encode() if salt else seed.encode()).hexdigest()[:12]
        candidate = f"G-{digest}"
        if candidate not in taken:
            return candidate
        salt += 1


def assign_golden_ids(clusters: pd.DataFrame, previous: pd.DataFrame, golden_ages: pd.DataFrame,
                      first_seen: pd.Series) -> IdAssignment:
    """Give every cluster a golden id that is stable across runs.

    * an unchanged or growing cluster keeps its id;
    * when clusters merge, the oldest golden record (then the larger) keeps its id and the
      others are retired, pointing at the survivor;
    * when a cluster splits, the part holding the oldest member keeps the id and the rest
      get new ones.

    Args:
        clusters: ``record_key, cluster_id`` for this run.
        previous: ``record_key, golden_id`` from the last run (the xref).
        golden_ages: ``golden_id, created_run, member_count, status`` of existing golden records.
        first_seen: record_key -> run id when the record was first staged (age of a member).
    """
    members = clusters.merge(previous, on="record_key", how="left")
    members["first_seen"] = members["record_key"].map(first_seen).fillna("~")
    claims = members.dropna(subset=["golden_id"])
    # Each old id goes to the new cluster holding its oldest surviving member.
    claims = claims.sort_values(["first_seen", "record_key"], kind="stable")
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

    events = [pd.DataFrame({"golden_id": retired["retired_into"], "event": "merged",
                            "other_id": retired["golden_id"], "detail": "absorbed a retired golden record"}),
              pd.DataFrame({"golden_id": retired["golden_id"], "event": "retired",
                            "other_id": retired["retired_into"], "detail": "merged into the survivor"})]
    active_before = set(golden_ages.loc[golden_ages["status"] == "active", "golden_id"]) if len(golden_ages) else set()
    gone = sorted(active_before - set(won["golden_id"]))
    if gone:
        retired = pd.concat([retired, pd.DataFrame({"golden_id": gone, "retired_into": None})], ignore_index=True)
        events.append(pd.DataFrame({"golden_id": gone, "event": "retired", "other_id": None,
                                    "detail": "no source record left"}))

    all_clusters = clusters.groupby("cluster_id", sort=True)["record_key"].min()
    ids = survivors.reindex(all_clusters.index)
    taken = set(golden_ages["golden_id"]) if len(golden_ages) else set()
    taken |= set(survivors)
    fresh = ids[ids.isna()].index
    split_from = claims.drop_duplicates("cluster_id").set_index("cluster_id")["golden_id"]
    new_ids = {}
    for cluster_id in fresh:  # new clusters only: small per run after the first
        gid = new_golden_id(all_clusters[cluster_id], taken)
        taken.add(gid)
        new_ids[cluster_id] = gid
    ids[fresh] = pd.Series(new_ids)
    if len(fresh):
        origin = pd.Series(fresh, index=fresh).map(split_from)
        events.append(pd.DataFrame({
            "golden_id": [new_ids[c] for c in fresh], "event": ["split" if isinstance(o, str) else "created"
                                                                for o in origin],
            "other_id": origin.where(origin.notna(), None).to_numpy(),
            "detail": ["split off from an existing golden record" if isinstance(o, str) else "new customer"
                       for o in origin],
        }))
    grown = _grown(clusters, previous, survivors)
    if len(grown):
        events.append(pd.DataFrame({"golden_id": grown, "event": "grown", "other_id": None,
                                    "detail": "new source records joined"}))
    event_frame = pd.concat([e for e in events if len(e)], ignore_index=True) if any(len(e) for e in events) \
        else pd.DataFrame(columns=EVENT_COLUMNS)
    return IdAssignment(ids.rename("golden_id"), retired, event_frame[EVENT_COLUMNS])


def _grown(clusters: pd.DataFrame, previous: pd.DataFrame, survivors: pd.Series) -> list[str]:
    """Survivor ids whose cluster gained a record that had no golden id before."""
    newcomers = clusters[~clusters["record_key"].isin(previous["record_key"])]
    hit = newcomers["cluster_id"].map(survivors).dropna()
    return sorted(set(hit))


def golden_stage(project: Project, ws: Workspace, run_id: str) -> dict[str, int]:
    """Survivorship and stable ids: clusters in, golden records, xref and history out."""
    recs = read_table(ws, records, ["record_key", "source", "source_updated_at", "first_seen_run",
                                    *GOLDEN_ATTRIBUTES])
    clustered = read_table(ws, clusters)
    recs = recs.merge(clustered, on="record_key", how="left")
    recs["cluster_id"] = recs["cluster_id"].fillna(recs["record_key"])
    survive_cfg = project.config.rules.survive
    survived = survive(recs, survive_cfg.rules_for, anchor_rules=survive_cfg.rules_for("default"))

    previous = read_table(ws, xref, ["record_key", "golden_id"])
    before = read_table(ws, golden, ["golden_id", "status", "created_run", "member_count", "row_hash"])
    first_seen = recs.set_index("record_key")["first_seen_run"]
    assignment = assign_golden_ids(recs[["record_key", "cluster_id"]], previous, before, first_seen)

    frame = survived.golden.copy()
    frame["golden_id"] = assignment.ids.reindex(frame.index).to_numpy()
    frame["member_count"] = recs.groupby("cluster_id").size().reindex(frame.index).to_numpy()
    attrs = [a for a in GOLDEN_ATTRIBUTES if a in frame]
    frame["lineage"] = _lineage(survived.from_record[attrs], survived.rule[attrs])
    frame["row_hash"] = pd.util.hash_pandas_object(
        frame[attrs].astype(str), index=False).map("{:016x}".format).to_numpy()
    old = before.set_index("golden_id")
    frame["created_run"] = frame["golden_id"].map(old["created_run"]).fillna(run_id) if len(old) else run_id
    unchanged = frame["golden_id"].map(old["row_hash"]) == frame["row_hash"] if len(old) else False
    changed = frame[~unchanged] if len(old) else frame
    changed = changed.assign(status="active", retired_into=None, updated_run=run_id)

    members = recs[["record_key", "cluster_id"]].copy()
    members["golden_id"] = members["cluster_id"].map(assignment.ids)
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
    counts = {"golden": len(frame), "changed": len(changed), "retired": len(assignment.retired)}
    log.info("golden: %s golden records (%s new or changed, %s retired)", *(f"{v:,}" for v in counts.values()))
    return counts


def _lineage(from_record: pd.DataFrame, rule: pd.DataFrame) -> list[dict]:
    """Per golden record: {attribute: {"from_record_key": ..., "rule": ...}} for every decided value."""
    out = []
    attrs = list(from_record.columns)
    for keys, rules in zip(from_record.itertuples(index=False), rule.itertuples(index=False)):
        out.append({a: {"from_record_key": k, "rule": r} for a, k, r in zip(attrs, keys, rules) if isinstance(k, str)})
    return out
