"""The review queue: what the matcher and survivorship could not decide alone, and the stewards' decisions.

Items are uncertain ``pair``\\ s (between the review and link thresholds), oversized
``cluster``\\ s and attribute ``conflict``\\ s (different values no rule could choose between).
An item's id is derived from what it is about (the two records, the cluster, the golden
record and attribute), so the same question keeps its id and its decision across runs.

A decision is logged (who, when, note, previous state) and becomes a constraint every
later run honours until a steward revokes it: ``must_link`` / ``cannot_link`` record pairs
for matching, ``override`` attribute values for survivorship. A decision is refused when the
records behind the item changed since the steward saw it (:class:`StaleItemError`).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from mappings.canonical import DICT_FIELDS, GOLDEN_ATTRIBUTES, LIST_FIELDS
from migrate.errors import EXIT_FAILED, EXIT_USAGE, InputError, MigrateError
from migrate.project import Project
from migrate.workspace import Workspace, clusters, decisions, golden, now, read_table, records, review_items, xref
from rules.match.graph import cluster_keys

KINDS = ("pair", "cluster", "conflict")
STATUSES = ("open", "decided", "closed")
ACTIONS = ("match", "no_match", "pick", "override")

#: Fields of a source record a steward sees; a stale item names the ones that changed.
SHOWN = ["record_key", "source", "first_name", "middle_name", "last_name", "organization_name", "emails", "phones",
         "street", "city", "postcode", "country", "birth_date", "email_opt_in", "do_not_contact",
         "source_updated_at"]

#: Columns of a review export; a steward fills ``decision`` (and ``field``/``value``, ``note``).
EXPORT_COLUMNS = ["item_id", "kind", "version", "probability", "golden_id", "attribute", "records", "left", "right",
                  "values", "decision", "field", "value", "note"]

#: Which decisions fit which kind of item.
_ALLOWED = {"pair": ("match", "no_match"), "cluster": ("match", "no_match", "override"),
            "conflict": ("pick", "override")}
_PREFIX = {"pair": "P", "cluster": "C", "conflict": "A"}
_OPPOSITE = {"must_link": "cannot_link", "cannot_link": "must_link"}
_IN_CHUNK = 5_000  # keys per IN (...) list


class UnknownItemError(MigrateError):
    """No review item with that id."""

    exit_code = EXIT_USAGE


class UnknownRecordError(MigrateError):
    """No staged record with that key."""

    exit_code = EXIT_USAGE


class UnknownDecisionError(MigrateError):
    """No decision with that id."""

    exit_code = EXIT_USAGE


class DecisionError(MigrateError):
    """A decision that does not fit its item: a pick on a pair, an unknown field, a value not offered."""

    exit_code = EXIT_USAGE


class StaleItemError(MigrateError):
    """The records behind an item changed since the steward saw it; the message says what changed."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Decision:
    """What a steward decided about an item.

    Example:
        >>> Decision.parse("override", "city=York")
        Decision(action='override', value='York', field='city')
    """

    action: Literal["match", "no_match", "pick", "override"]
    value: Any = None
    field: str | None = None

    @classmethod
    def parse(cls, action: str, value: str | None = None, field: str | None = None) -> Decision:
        """A decision from text (command line, CSV): ``override`` takes ``FIELD=VALUE`` or a separate field."""
        action = action.strip().lower().replace("-", "_")
        if action not in ACTIONS:
            raise DecisionError(f"unknown decision {action!r}; expected one of {', '.join(ACTIONS)}")
        if action == "override" and not field:
            if not value or "=" not in value:
                raise DecisionError(f"an override needs FIELD=VALUE, found {value!r}")
            field, value = (part.strip() for part in value.split("=", 1))
        if action in ("pick", "override") and value is None:
            raise DecisionError(f"{action} needs a value")
        return cls(action, value, field or None)  # type: ignore[arg-type]


@dataclass
class ReviewItem:
    """One item as a steward sees it now."""

    item_id: str
    kind: str
    status: str
    records: pd.DataFrame       # the source records involved (SHOWN columns and row_hash), as they are now
    evidence: dict[str, Any]    # probability, explanation rows, conflicting values, members...
    version: str                # hash of the records' row_hash values: pass it back to decide()
    golden_id: str | None = None
    attribute: str | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)  # its active decisions


@dataclass
class DecisionResult:
    """What a decision did."""

    decision_id: int
    item_id: str | None
    constraint: str
    superseded: list[int] = field(default_factory=list)
    message: str = ""


@dataclass
class Constraints:
    """Active decisions as constraints for matching and survivorship."""

    must_link: pd.DataFrame     # record_key_l < record_key_r, decision_id
    cannot_link: pd.DataFrame   # record_key_l < record_key_r, decision_id
    overrides: pd.DataFrame     # decision_id, golden_id, record_key (its anchor then), source_record, attribute,
    #                             value, who, at


@dataclass
class ImportResult:
    """What a CSV import applied, and each row it could not use with the reason."""

    applied: int = 0
    problems: list[str] = field(default_factory=list)


# --- the queue -------------------------------------------------------------------------------------------------

def item_id(kind: str, *parts: str) -> str:
    """The stable id of the item about ``parts`` (sorted record keys, a cluster id, golden id and attribute).

    Example:
        >>> item_id("pair", "erp:1", "crm:7") == item_id("pair", "crm:7", "erp:1")
        True
    """
    if kind == "pair":
        parts = tuple(sorted(parts))
    return f"{_PREFIX[kind]}-" + hashlib.sha1("|".join((kind, *parts)).encode()).hexdigest()[:10]


def refresh_queue(project: Project, ws: Workspace, run_id: str, review_pairs: pd.DataFrame | None,
                  oversized: pd.DataFrame | None, conflicts: pd.DataFrame | None = None) -> int:
    """Bring the queue up to date with a run; returns how many items of the refreshed kinds are open.

    Only the kinds given are refreshed (the match stage gives pairs and clusters, the golden
    stage conflicts). A new question opens an item; an open item gets fresh evidence, keeping
    what the steward may have seen before for the stale check; an open item the run no
    longer raises is closed. Decided items stay decided, unless the run raises one again
    about records that changed since (a cluster a steward kept together that grew): it
    opens again, its decision still in force until replaced.

    Args:
        project: the migration (its match thresholds go into pair evidence).
        ws: the workspace.
        run_id: the run refreshing the queue.
        review_pairs: ``record_key_l``, ``record_key_r``, ``match_probability`` and optionally
            ``match_weight``, ``gamma_<comparison>`` or ``levels`` (comparison -> level) and
            ``waterfall`` (the rows of ``rules.match.explain``); None leaves pair items alone.
        oversized: ``cluster_id`` of clusters too big to merge unreviewed, with their members as
            ``record_key`` (else read from the clusters table); None leaves cluster items alone.
        conflicts: ``golden_id``, ``attribute``, ``record_key``, ``source``, ``value`` (the tied values);
            None leaves conflict items alone.
    """
    kinds, found = [], []
    if review_pairs is not None:
        kinds.append("pair")
        found += _pair_items(review_pairs, getattr(project.config.rules.match, "thresholds", None))
    if oversized is not None:
        kinds.append("cluster")
        found += _cluster_items(ws, oversized)
    if conflicts is not None:
        kinds.append("conflict")
        found += _conflict_items(conflicts)
    if not kinds:
        return 0
    current = _current_records(ws, {k for item in found for k in item["evidence"]["keys"]})
    for item in found:
        item["evidence"]["snapshot"] = _snapshot(item["evidence"]["keys"], current)
    with ws.begin() as conn:
        existing = {r.item_id: r for r in conn.execute(
            sa.select(review_items.c.item_id, review_items.c.status, review_items.c.evidence)
            .where(review_items.c.kind.in_(kinds)))}
        fresh = [item for item in found if item["item_id"] not in existing]
        for item in fresh:
            item.update(status="open", created_run=run_id, evidence=json.dumps(item["evidence"], default=str))
        ws.insert(conn, review_items, fresh)
        known = [item for item in found if item["item_id"] in existing]
        if known:
            conn.execute(sa.update(review_items).where(review_items.c.item_id == sa.bindparam("_id"))
                         .values(evidence=sa.bindparam("_evidence")),
                         [{"_id": i["item_id"], "_evidence": _carry_snapshot(i["evidence"], existing[i["item_id"]])}
                          for i in known])
        # Status moves are guarded by the status read, so a decision made meanwhile is never undone.
        seen = {item["item_id"] for item in found}
        _move(conn, [i for i, r in existing.items() if i in seen and r.status == "closed"], "closed", "open")
        _move(conn, [i["item_id"] for i in known if existing[i["item_id"]].status == "decided"
                     and _version(existing[i["item_id"]]) != i["evidence"]["snapshot"]["version"]], "decided", "open")
        _move(conn, [i for i, r in existing.items() if i not in seen and r.status == "open"], "open", "closed")
        return conn.execute(sa.select(sa.func.count()).where(
            review_items.c.kind.in_(kinds), review_items.c.status == "open")).scalar_one()


def _move(conn: sa.Connection, ids: list[str], old: str, new: str) -> None:
    if ids:
        conn.execute(sa.update(review_items).where(review_items.c.item_id == sa.bindparam("_id"),
                                                   review_items.c.status == old).values(status=new),
                     [{"_id": i} for i in ids])


def _version(row: Any) -> str | None:
    return json.loads(row.evidence or "{}").get("snapshot", {}).get("version")


def _carry_snapshot(evidence: dict[str, Any], old: Any) -> str:
    """New evidence, remembering the snapshot a steward may have seen when the records changed since."""
    before = json.loads(old.evidence or "{}").get("snapshot")
    if before and before["version"] != evidence["snapshot"]["version"]:
        evidence = {**evidence, "previous_snapshot": before}
    return json.dumps(evidence, default=str)


def _pair_items(pairs: pd.DataFrame, thresholds: Any) -> list[dict[str, Any]]:
    gammas = [c for c in pairs.columns if c.startswith("gamma_")]
    out = []
    for row in pairs.to_dict("records"):
        left, right = sorted((row["record_key_l"], row["record_key_r"]))
        levels = row.get("levels") if isinstance(row.get("levels"), dict) else \
            {c.removeprefix("gamma_"): _plain(row[c]) for c in gammas}
        evidence = {"keys": [left, right], "probability": _plain(row.get("match_probability")),
                    "match_weight": _plain(row.get("match_weight")), "levels": levels}
        if isinstance(row.get("waterfall"), list):  # rows of rules.match.explain(), when the matcher gives them
            evidence["waterfall"] = row["waterfall"]
        if thresholds is not None:
            evidence["thresholds"] = {"review": thresholds.review, "link": thresholds.link}
        out.append({"item_id": item_id("pair", left, right), "kind": "pair", "record_key_l": left,
                    "record_key_r": right, "golden_id": None, "attribute": None, "evidence": evidence})
    return out


def _cluster_items(ws: Workspace, oversized: pd.DataFrame) -> list[dict[str, Any]]:
    members = oversized
    if "record_key" not in oversized:
        ids = oversized["cluster_id"].astype(str).tolist()
        parts = [read_table(ws, clusters, where=clusters.c.cluster_id.in_(ids[i:i + _IN_CHUNK]))
                 for i in range(0, len(ids), _IN_CHUNK)]
        members = pd.concat(parts) if parts else pd.DataFrame(columns=["record_key", "cluster_id"])
    out = []
    for cluster_id, group in members.groupby("cluster_id"):
        keys = sorted(group["record_key"])
        out.append({"item_id": item_id("cluster", cluster_id), "kind": "cluster", "record_key_l": cluster_id,
                    "record_key_r": None, "golden_id": None, "attribute": None,
                    "evidence": {"keys": keys, "size": len(keys)}})
    return out


def _conflict_items(conflicts: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for (golden_id, attribute), group in conflicts.groupby(["golden_id", "attribute"], sort=True):
        values = [{"value": _plain(v), "record_key": k, "source": s}
                  for v, k, s in zip(group["value"], group["record_key"], group["source"])]
        keys = sorted(group["record_key"])
        distinct = group.drop_duplicates("value" if attribute not in LIST_FIELDS + DICT_FIELDS else "record_key")
        out.append({"item_id": item_id("conflict", golden_id, attribute), "kind": "conflict",
                    "record_key_l": distinct["record_key"].iloc[0], "record_key_r": distinct["record_key"].iloc[-1],
                    "golden_id": golden_id, "attribute": attribute,
                    "evidence": {"keys": keys, "values": values, "chosen": values[0]["value"]}})
    return out


def list_items(ws: Workspace, kind: str | None = None, source: str | None = None, status: str = "open",
               band: tuple[float, float] | None = None) -> pd.DataFrame:
    """Review items, one row each: most certain pairs first within a kind.

    Args:
        ws: the workspace.
        kind: only ``pair``, ``cluster`` or ``conflict`` items.
        source: only items involving a record of this source.
        status: ``open``, ``decided``, ``closed`` or ``all``.
        band: only pairs whose match probability lies in ``[low, high]``.

    Returns:
        ``item_id, kind, status, probability, golden_id, attribute, record_key_l, record_key_r,
        records, sources, version, created_run``.
    """
    if kind is not None and kind not in KINDS:
        raise DecisionError(f"unknown item kind {kind!r}; expected one of {', '.join(KINDS)}")
    where = [review_items.c.kind == kind] if kind else []
    if status != "all":
        where.append(review_items.c.status == status)
    rows = read_table(ws, review_items, where=sa.and_(sa.true(), *where))
    evidence = [json.loads(e or "{}") for e in rows["evidence"]]
    rows["probability"] = [e.get("probability") for e in evidence]
    rows["records"] = [e.get("keys", []) for e in evidence]
    rows["sources"] = [sorted({k.split(":", 1)[0] for k in e.get("keys", [])}) for e in evidence]
    rows["version"] = [e.get("snapshot", {}).get("version") for e in evidence]
    if source:
        rows = rows[[source in s for s in rows["sources"]]]
    if band is not None:
        p = pd.to_numeric(rows["probability"], errors="coerce")
        rows = rows[p.between(*band)]
    rows = rows.assign(_p=-pd.to_numeric(rows["probability"], errors="coerce").fillna(2.0))
    rows = rows.sort_values(["kind", "_p", "item_id"], kind="stable")
    return rows[["item_id", "kind", "status", "probability", "golden_id", "attribute", "record_key_l",
                 "record_key_r", "records", "sources", "version", "created_run"]].reset_index(drop=True)


def get_item(ws: Workspace, item_id: str) -> ReviewItem:
    """One item with its records as they are now, its evidence and the version to decide on."""
    row = _item_row(ws, item_id)
    evidence = json.loads(row["evidence"] or "{}")
    keys = evidence.get("keys", [])
    current = _current_records(ws, set(keys))
    frame = pd.DataFrame([current[k] for k in keys if k in current], columns=[*SHOWN, "row_hash"])
    shown = {k: v for k, v in evidence.items() if k not in ("snapshot", "previous_snapshot")}
    shown["missing_records"] = [k for k in keys if k not in current]
    if row["kind"] == "pair" and len(frame) == 2:
        shown["explanation"] = _side_by_side(frame.iloc[0], frame.iloc[1])
    if row["kind"] == "conflict":
        shown["golden_value"] = _golden_value(ws, row["golden_id"], row["attribute"])
    active = decision_log(ws)
    active = active[(active["item_id"] == item_id) & active["revoked_at"].isna()].reset_index(drop=True)
    return ReviewItem(item_id, row["kind"], row["status"], frame, shown, _snapshot(keys, current)["version"],
                      row["golden_id"], row["attribute"], active)


def _side_by_side(left: pd.Series, right: pd.Series) -> list[dict[str, Any]]:
    """Per shown field: both values and whether they agree (None when either is missing)."""
    rows = []
    for f in SHOWN[1:]:
        a, b = _plain(left[f]), _plain(right[f])
        agrees = None if _blank(a) or _blank(b) else a == b
        rows.append({"field": f, "left": a, "right": b, "agrees": agrees})
    return rows


# --- decisions -------------------------------------------------------------------------------------------------

def decide(project: Project, ws: Workspace, item_id: str, decision: Decision, who: str, note: str | None = None,
           seen_version: str | None = None) -> DecisionResult:
    """Record a steward's decision on an item; it becomes a constraint for every later run.

    Deciding an item again replaces its earlier decision (which is revoked and logged);
    the same decision twice is recorded once.

    Args:
        project: the migration (decisions are also appended to ``<state>/logs/decisions.jsonl``).
        ws: the workspace.
        item_id: the item.
        decision: ``match`` / ``no_match`` (pairs, clusters), ``pick`` a value offered by a
            conflict, or ``override`` any golden attribute (conflicts, clusters).
        who: the steward.
        note: why, for the log.
        seen_version: the ``version`` the steward saw (:func:`get_item`); None means the
            version the queue last recorded.

    Raises:
        UnknownItemError: no such item (exit 2).
        DecisionError: the decision does not fit the item (exit 2).
        StaleItemError: the records changed since that version (exit 1); says what changed.
    """
    row = _item_row(ws, item_id)
    if decision.action not in _ALLOWED[row["kind"]]:
        raise DecisionError(f"a {row['kind']} item is decided with {' or '.join(_ALLOWED[row['kind']])}, "
                            f"not {decision.action}")
    evidence = json.loads(row["evidence"] or "{}")
    _check_fresh(ws, item_id, evidence, seen_version)
    constraint = _constraint(ws, row, evidence, decision)
    previous = {"item_status": row["status"], "golden_ids": _golden_ids(ws, evidence.get("keys", []))}
    result = _record(project, ws, constraint, who, note, previous,
                     same_slot=(decisions.c.item_id == item_id) & _same_attribute(constraint.get("attribute")))
    with ws.begin() as conn:
        conn.execute(sa.update(review_items).where(review_items.c.item_id == item_id).values(status="decided"))
    return result


def unmerge(project: Project, ws: Workspace, record_key: str, who: str, note: str | None = None) -> DecisionResult:
    """Take a record out of its golden record: it must not link to any record it is merged with now.

    The next run gives it a golden record of its own (its earlier id, if it had one before
    the merge), and keeps it apart from the others until the decision is revoked.

    Raises:
        UnknownRecordError: no staged record with that key (exit 2).
        DecisionError: the record is alone in its golden record already (exit 2).
    """
    mine = read_table(ws, xref, where=xref.c.record_key == record_key)
    if mine.empty:
        raise UnknownRecordError(f"no staged record {record_key!r} (record keys look like source:id; "
                                 "`crm-migrate golden show GOLDEN_ID` lists a golden record's records)")
    golden_id = mine["golden_id"].iloc[0]
    mates = sorted(set(read_table(ws, xref, ["record_key"], where=xref.c.golden_id == golden_id)["record_key"])
                   - {record_key})
    if not mates:
        raise DecisionError(f"{record_key} is the only record of {golden_id}; there is nothing to unmerge")
    constraint = {"item_id": None, "constraint": "cannot_link", "record_key_l": record_key, "record_key_r": None,
                  "attribute": None, "value": json.dumps(mates), "golden_id": golden_id}
    return _record(project, ws, constraint, who, note, {"golden_id": golden_id, "members": [record_key, *mates]})


def revoke(project: Project, ws: Workspace, decision_id: int, who: str) -> None:
    """Withdraw a decision: later runs no longer honour it, and its item opens again.

    Raises:
        UnknownDecisionError: no such decision (exit 2).
        DecisionError: it was revoked already (exit 2).
    """
    found = read_table(ws, decisions, where=decisions.c.id == int(decision_id))
    if found.empty:
        raise UnknownDecisionError(f"no decision {decision_id} (`crm-migrate review log` lists them)")
    row = found.iloc[0]
    if isinstance(row["revoked_at"], str):
        raise DecisionError(f"decision {decision_id} was revoked already, at {row['revoked_at']} "
                            f"by {row['revoked_by']}")
    at = now()
    with ws.begin() as conn:
        conn.execute(sa.update(decisions).where(decisions.c.id == int(decision_id)).values(
            revoked_at=at, revoked_by=who))
        if isinstance(row["item_id"], str) and not conn.execute(sa.select(sa.func.count()).where(
                decisions.c.item_id == row["item_id"], decisions.c.revoked_at.is_(None))).scalar_one():
            conn.execute(sa.update(review_items).where(review_items.c.item_id == row["item_id"]).values(status="open"))
    _audit(project, {"event": "revoke", "decision_id": int(decision_id), "who": who, "at": at})


def decision_log(ws: Workspace) -> pd.DataFrame:
    """Every decision, oldest first: who, when, note, the constraint, its previous state, and any revocation."""
    log = read_table(ws, decisions).sort_values("id").reset_index(drop=True)
    return log.astype({"id": "int64"}) if len(log) else log


def decision_text(d: dict[str, Any]) -> str:
    """One decision in words, for histories and reports."""
    what = {"must_link": "keep together", "cannot_link": "keep apart", "override": "set"}[d["constraint"]]
    if d["constraint"] == "override":
        subject = f"{d['attribute']} = {json.loads(d['value'])!r}"
    else:
        subject = " and ".join(s for s in (d["record_key_l"], d["record_key_r"]) if isinstance(s, str))
        if isinstance(d["value"], str):
            subject += (" from " if subject else "") + ", ".join(json.loads(d["value"]))
    text = f"{what} {subject} by {d['who']}"
    if isinstance(d.get("note"), str) and d["note"]:
        text += f" ({d['note']})"
    if isinstance(d.get("revoked_at"), str):
        text += f"; revoked {d['revoked_at']} by {d['revoked_by']}"
    return text


def constraints(ws: Workspace) -> Constraints:
    """The active decisions as must-link and cannot-link record pairs and golden attribute overrides."""
    active = read_table(ws, decisions, where=decisions.c.revoked_at.is_(None)).sort_values("id")
    links: dict[str, list[tuple[str, str, int]]] = {"must_link": [], "cannot_link": []}
    for row in active[active["constraint"].isin(list(links))].itertuples(index=False):
        links[row.constraint] += [(a, b, int(row.id)) for a, b in _pairs_of(row.constraint, row.record_key_l,
                                                                             row.record_key_r, row.value)]
    frames = {k: pd.DataFrame(v, columns=["record_key_l", "record_key_r", "decision_id"])
              .drop_duplicates(["record_key_l", "record_key_r"], keep="last").reset_index(drop=True)
              for k, v in links.items()}
    over = active[active["constraint"] == "override"]
    overrides = pd.DataFrame({
        "decision_id": over["id"].astype("int64"), "golden_id": over["golden_id"], "record_key": over["record_key_l"],
        "source_record": over["record_key_r"], "attribute": over["attribute"],
        "value": [json.loads(v) for v in over["value"]], "who": over["who"], "at": over["at"],
    }).reset_index(drop=True)
    return Constraints(frames["must_link"], frames["cannot_link"], overrides)


def with_decisions(pairs: pd.DataFrame, decided: Constraints) -> pd.DataFrame:
    """Linked pairs with the stewards' word applied: cannot-link pairs dropped, must-link pairs added.

    Added pairs have ``rule`` ``steward`` and probability 1. A chain of other links can still
    join a cannot-link pair; :func:`cluster_with_decisions` cuts such a cluster.
    """
    kept = pairs[~_ordered(pairs).isin(_ordered(decided.cannot_link))]
    must = decided.must_link[["record_key_l", "record_key_r"]].assign(rule="steward", match_probability=1.0)
    both = pd.concat([must, kept[~_ordered(kept).isin(_ordered(must))]], ignore_index=True)
    return both.astype({"match_probability": float})


def cluster_with_decisions(record_keys: pd.Series, pairs: pd.DataFrame, decided: Constraints) -> pd.DataFrame:
    """Clusters of the linked pairs in which no cannot-link pair ends up together.

    A cluster that would join a cannot-link pair is rebuilt from its links strongest first
    (steward must-links, then by probability), skipping every link that would join them.

    Returns:
        ``record_key, cluster_id`` (the smallest key in the cluster) for every record.
    """
    strength = pairs["match_probability"].to_numpy(dtype=float) + (pairs["rule"] == "steward").to_numpy()
    return cluster_keys(record_keys, pairs, decided.cannot_link, strength)


def steward_kept(members: pd.DataFrame, decided: Constraints) -> set[str]:
    """The clusters among ``members`` (``record_key, cluster_id``) whose records steward must-links hold
    together: an oversized cluster decided with match, to merge rather than hold for review again."""
    groups = cluster_keys(members["record_key"], decided.must_link).rename(columns={"cluster_id": "group"})
    spread = members.merge(groups, on="record_key").groupby("cluster_id")["group"].nunique()
    return set(spread[spread == 1].index)


def _ordered(pairs: pd.DataFrame) -> pd.MultiIndex:
    """Pairs as (smaller key, larger key), to compare pairs whatever their order."""
    left, right = pairs["record_key_l"].astype(str), pairs["record_key_r"].astype(str)
    first = left <= right
    return pd.MultiIndex.from_arrays([left.where(first, right), right.where(first, left)])


def _pairs_of(kind: str, left: str | None, right: str | None, value: str | None) -> list[tuple[str, str]]:
    """The record pairs one link decision stands for, each ordered (smaller key first).

    A pair names both records; a record against a list (an unmerge) pairs it with each;
    a list alone (a cluster decision) is every pair of it for ``cannot_link`` and a chain
    through it for ``must_link`` (enough to hold it together).
    """
    if isinstance(right, str):
        pairs = [(left, right)]
    elif isinstance(left, str):
        pairs = [(left, other) for other in json.loads(value or "[]")]
    else:
        keys = json.loads(value or "[]")
        pairs = list(combinations(keys, 2)) if kind == "cannot_link" else list(zip(keys, keys[1:]))
    return [(min(a, b), max(a, b)) for a, b in pairs if a != b]  # type: ignore[type-var]


def _constraint(ws: Workspace, row: dict[str, Any], evidence: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The decisions-table row (without who/when) a decision on an item stands for."""
    base = {"item_id": row["item_id"], "record_key_l": None, "record_key_r": None, "attribute": None, "value": None,
            "golden_id": row["golden_id"]}
    link = {"match": "must_link", "no_match": "cannot_link"}.get(decision.action)
    if link and row["kind"] == "pair":
        return {**base, "constraint": link, "record_key_l": row["record_key_l"], "record_key_r": row["record_key_r"]}
    if link:  # a cluster: hold every member together, or keep each apart
        return {**base, "constraint": link, "value": json.dumps(evidence["keys"])}
    golden_id = row["golden_id"] or _golden_of(ws, row["record_key_l"])
    attribute = row["attribute"] if decision.action == "pick" else decision.field
    if attribute not in GOLDEN_ATTRIBUTES:
        raise DecisionError(f"cannot override {attribute!r}: not a golden attribute "
                            f"(one of {', '.join(GOLDEN_ATTRIBUTES)})")
    value = parse_value(attribute, decision.value)
    source_record = None
    if decision.action == "pick":
        offered = {_text(v["value"]): v["record_key"] for v in reversed(evidence["values"])}
        if _text(value) not in offered:
            raise DecisionError(f"{decision.value!r} is not one of the values in conflict for {attribute}: "
                                + ", ".join(sorted(offered)) + " (use --override to set another value)")
        source_record = offered[_text(value)]
    anchor = read_table(ws, xref, ["record_key"], where=(xref.c.golden_id == golden_id) & (xref.c.role == "anchor"))
    return {**base, "constraint": "override", "golden_id": golden_id, "attribute": attribute,
            "value": json.dumps(value), "record_key_r": source_record,
            "record_key_l": anchor["record_key"].iloc[0] if len(anchor) else None}


def _record(project: Project, ws: Workspace, constraint: dict[str, Any], who: str, note: str | None,
            previous: dict[str, Any], same_slot: Any = None) -> DecisionResult:
    """Log a decision, revoking the active ones it replaces: the same slot of the same item, or the
    opposite link on any of its pairs (the steward's latest word wins)."""
    active = read_table(ws, decisions, where=decisions.c.revoked_at.is_(None))
    replaced = read_table(ws, decisions, where=same_slot & decisions.c.revoked_at.is_(None)) \
        if same_slot is not None else active.iloc[0:0]
    for existing in replaced.to_dict("records"):
        if all(existing[k] == constraint[k] for k in ("constraint", "record_key_l", "record_key_r", "value")):
            return DecisionResult(int(existing["id"]), constraint["item_id"], constraint["constraint"],
                                  message=f"already decided (decision {int(existing['id'])})")
    superseded = set(replaced["id"].astype(int))
    if constraint["constraint"] in ("must_link", "cannot_link"):
        mine = set(_pairs_of(constraint["constraint"], constraint["record_key_l"], constraint["record_key_r"],
                             constraint["value"]))
        opposite = active[active["constraint"] == _OPPOSITE[constraint["constraint"]]]
        superseded |= {int(r.id) for r in opposite.itertuples(index=False)
                       if mine & set(_pairs_of(r.constraint, r.record_key_l, r.record_key_r, r.value))}
    if constraint["constraint"] == "override":
        previous["golden_value"] = _golden_value(ws, constraint["golden_id"], constraint["attribute"])
    at = now()
    previous["superseded"] = sorted(superseded)
    row = {**constraint, "who": who, "at": at, "note": note, "previous": json.dumps(previous, default=str)}
    with ws.begin() as conn:
        if superseded:
            conn.execute(sa.update(decisions).where(decisions.c.id.in_(sorted(superseded))).values(
                revoked_at=at, revoked_by=who))
        decision_id = int(conn.execute(sa.insert(decisions).values(**row)).inserted_primary_key[0])
    _audit(project, {"event": "decide", "decision_id": decision_id, **row})
    note_superseded = f"; replaces decision(s) {', '.join(map(str, sorted(superseded)))}" if superseded else ""
    return DecisionResult(decision_id, constraint["item_id"], constraint["constraint"], sorted(superseded),
                          f"decision {decision_id} recorded ({constraint['constraint']}){note_superseded}; "
                          "the next run applies it")


def _same_attribute(attribute: str | None) -> Any:
    return decisions.c.attribute.is_(None) if attribute is None else decisions.c.attribute == attribute


def _audit(project: Project, entry: dict[str, Any]) -> None:
    """Append to the project's decision log file: an audit trail that outlives a rebuilt workspace."""
    path = project.state_dir / "logs" / "decisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str, ensure_ascii=False) + "\n")


# --- staleness -------------------------------------------------------------------------------------------------

def _check_fresh(ws: Workspace, item_id: str, evidence: dict[str, Any], seen_version: str | None) -> None:
    keys = evidence.get("keys", [])
    current = _current_records(ws, set(keys))
    now_version = _snapshot(keys, current)["version"]
    seen = seen_version or evidence.get("snapshot", {}).get("version")
    if seen == now_version:
        return
    shown = next((s for s in (evidence.get("snapshot"), evidence.get("previous_snapshot"))
                  if s and s["version"] == seen), None)
    if shown is None:
        raise StaleItemError(f"review item {item_id} changed since version {seen} was shown (now {now_version}); "
                             f"show it again (`crm-migrate review show {item_id}`) and decide on what is there now")
    changes = _changes(shown["records"], current)
    raise StaleItemError(f"review item {item_id} is stale: {'; '.join(changes)}. Show it again "
                         f"(`crm-migrate review show {item_id}`) and decide on what is there now")


def _changes(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """What changed between two snapshots of the same records, in words."""
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if new is None:
            out.append(f"{key} is no longer in the sources")
        elif old is None:
            out.append(f"{key} is new")
        elif old.get("row_hash") != new.get("row_hash"):
            diffs = [f"{f} {old.get(f)!r} -> {new.get(f)!r}" for f in SHOWN if old.get(f) != new.get(f)]
            out.append(f"{key} changed ({', '.join(diffs) or 'in fields not shown'})")
    return out


def _current_records(ws: Workspace, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The shown fields and row_hash of the given records as staged now, by key."""
    wanted = sorted(keys)
    frames = [read_table(ws, records, [*SHOWN, "row_hash"], where=records.c.record_key.in_(wanted[i:i + _IN_CHUNK]))
              for i in range(0, len(wanted), _IN_CHUNK)]
    out = {}
    for frame in frames:
        for rec in frame.to_dict("records"):
            out[rec["record_key"]] = {k: _plain(v) for k, v in rec.items()}
    return out


def _snapshot(keys: list[str], current: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The records behind an item and their version: a hash of their row hashes (a missing record counts)."""
    text = "|".join(f"{k}={current[k]['row_hash'] if k in current else '-'}" for k in sorted(keys))
    return {"version": hashlib.sha1(text.encode()).hexdigest()[:12],
            "records": {k: current[k] for k in keys if k in current}}


# --- CSV round trip --------------------------------------------------------------------------------------------

def export_csv(ws: Workspace, path: Path, kind: str | None = None, source: str | None = None) -> int:
    """Write open items to a CSV for offline review in a spreadsheet; returns the row count.

    A steward fills ``decision`` (match, no_match, pick, override), ``value`` (and ``field``
    for an override) and ``note``, then hands the file to :func:`import_csv`.
    """
    items = list_items(ws, kind, source)
    current = _current_records(ws, {k for keys in items["records"] for k in keys})
    evidence = {r.item_id: json.loads(r.evidence or "{}") for r in read_table(
        ws, review_items, ["item_id", "evidence"], where=review_items.c.status == "open").itertuples(index=False)}
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, EXPORT_COLUMNS)
        writer.writeheader()
        for it in items.to_dict("records"):
            values = evidence[it["item_id"]].get("values", [])
            writer.writerow({
                "item_id": it["item_id"], "kind": it["kind"], "version": it["version"],
                "probability": "" if it["probability"] is None else f"{it['probability']:.4f}",
                "golden_id": it["golden_id"] or "", "attribute": it["attribute"] or "",
                "records": " ".join(it["records"]),
                "left": _summary(current.get(it["record_key_l"] or "")),
                "right": _summary(current.get(it["record_key_r"] or "")),
                "values": " | ".join(f"{_text(v['value'])} ({v['record_key']})" for v in values),
                "decision": "", "field": "", "value": "", "note": ""})
    return len(items)


def import_csv(project: Project, ws: Workspace, path: Path, who: str) -> ImportResult:
    """Apply the decisions filled into an exported CSV; each bad row is reported, the rest applied.

    Rows with an empty ``decision`` are skipped (not reviewed yet). Each decision is checked
    against the ``version`` exported, so a row about records that changed since is refused.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV export ({exc})") from None
    missing = [c for c in ("item_id", "decision") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; export it with `crm-migrate review export`")
    result = ImportResult()
    for line, rec in enumerate(frame.to_dict("records"), start=2):
        if not rec["decision"].strip():
            continue
        try:
            decision = Decision.parse(rec["decision"], rec.get("value") or None, rec.get("field") or None)
            decide(project, ws, rec["item_id"].strip(), decision, who, rec.get("note") or None,
                   seen_version=rec.get("version") or None)
        except MigrateError as exc:
            result.problems.append(f"{path}:{line}: {rec['item_id']}: {exc}")
            continue
        result.applied += 1
    return result


# --- helpers ---------------------------------------------------------------------------------------------------

def parse_value(attribute: str, value: Any) -> Any:
    """A steward's value in the golden attribute's type: lists split on commas, consent as a boolean.

    Example:
        >>> parse_value("phones", "+441, +442"), parse_value("email_opt_in", "no")
        (['+441', '+442'], False)
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if attribute in LIST_FIELDS:
        return [v.strip() for v in text.replace(";", ",").split(",") if v.strip()]
    if attribute in ("email_opt_in", "do_not_contact"):
        flags = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
        if text.lower() not in flags:
            raise DecisionError(f"{attribute} takes yes or no, found {value!r}")
        return flags[text.lower()]
    if attribute in DICT_FIELDS:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise DecisionError(f"{attribute} takes a JSON object such as {{\"vat\": \"GB123\"}}, found {value!r}")
        return parsed
    return text or None


def _item_row(ws: Workspace, item_id: str) -> dict[str, Any]:
    rows = read_table(ws, review_items, where=review_items.c.item_id == item_id)
    if rows.empty:
        raise UnknownItemError(f"no review item {item_id!r} (`crm-migrate review list` shows the open ones)")
    return {k: _plain(v) for k, v in rows.iloc[0].to_dict().items()}


def _golden_of(ws: Workspace, record_key: str) -> str | None:
    found = read_table(ws, xref, ["golden_id"], where=xref.c.record_key == record_key)
    return found["golden_id"].iloc[0] if len(found) else None


def _golden_ids(ws: Workspace, keys: list[str]) -> dict[str, str]:
    found = read_table(ws, xref, ["record_key", "golden_id"], where=xref.c.record_key.in_(keys[:_IN_CHUNK]))
    return dict(zip(found["record_key"], found["golden_id"]))


def _golden_value(ws: Workspace, golden_id: str | None, attribute: str) -> Any:
    if golden_id is None or attribute not in GOLDEN_ATTRIBUTES:
        return None
    found = read_table(ws, golden, [attribute], where=golden.c.golden_id == golden_id)
    return _plain(found[attribute].iloc[0]) if len(found) else None


def _summary(rec: dict[str, Any] | None) -> str:
    """One line a steward recognises a record by."""
    if not rec:
        return ""
    name = " ".join(str(rec[f]) for f in ("first_name", "last_name") if not _blank(rec.get(f)))
    parts = [name or rec.get("organization_name"), *(rec.get("emails") or [])[:1], *(rec.get("phones") or [])[:1],
             rec.get("city"), rec.get("country"), rec.get("birth_date")]
    return " · ".join(str(p) for p in parts if not _blank(p)) + f" [{rec['record_key']}]"


def _plain(value: Any) -> Any:
    """pandas' missing markers as None and numpy scalars as Python, so values compare and serialise."""
    if isinstance(value, (list, dict)):
        return value
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _blank(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _text(value: Any) -> str:
    """A value as a steward types it: lists comma-separated, consent as yes/no."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else (json.dumps(value) if isinstance(value, dict) else str(value))
