"""Golden ids stay stable under any sequence of added, removed, edited, merged and split records.

Each example is a migration over many runs: a random sequence of changes to which records
belong together, each followed by :func:`assign_golden_ids` and the bookkeeping the golden
stage does (new ids active, retired ids retired). After every run the rules of issue #7
must hold, stated here independently of the implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.golden import IdAssignment, assign_golden_ids

SETTINGS = settings(max_examples=100, deadline=None)
FEWER = settings(max_examples=25, deadline=None)  # the rule checks above cover more; these pin one property each

# One change: (kind, a, b, c); the small integers pick records and clusters modulo what exists.
change = st.tuples(st.sampled_from(["add", "add", "remove", "move", "merge", "split", "rerun"]),
                   st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))


@dataclass
class Migration:
    """The true grouping of records (record -> group label) and the golden state after each run."""

    groups: dict[str, int] = field(default_factory=dict)
    first_seen: dict[str, str] = field(default_factory=dict)
    xref: dict[str, str] = field(default_factory=dict)       # record -> golden id, as written by the last run
    origins: dict[str, str] = field(default_factory=dict)    # record -> the id it held before it was merged in
    golden: dict[str, dict] = field(default_factory=dict)    # golden id -> status, retired_into, runs, size
    runs: int = 0
    counter: int = 0

    def apply(self, kind: str, a: int, b: int, c: int) -> None:
        keys = sorted(self.groups)
        labels = sorted(set(self.groups.values()))
        if kind == "add" or not keys:
            self.counter += 1
            key = f"r:{self.counter * 37 % 1000:03d}"  # unique, and not always larger than the keys before it
            self.groups[key] = labels[a % len(labels)] if labels and b % 3 else self.counter + 1000
            self.first_seen[key] = self.run_id()
        elif kind == "remove":
            del self.groups[keys[a % len(keys)]]
        elif kind == "move":  # an edit that changes what a record matches
            self.groups[keys[a % len(keys)]] = labels[b % len(labels)] if c % 2 else self.counter + 2000 + a
        elif kind == "merge":
            into, other = labels[a % len(labels)], labels[b % len(labels)]
            self.groups = {k: into if g == other else g for k, g in self.groups.items()}
        elif kind == "split":
            label = labels[a % len(labels)]
            members = sorted(k for k, g in self.groups.items() if g == label)
            for i, k in enumerate(members):
                if (b >> (i % 6)) & 1:
                    self.groups[k] = label + 5000 + c

    def run_id(self) -> str:
        return f"run{self.runs + 1:04d}"

    def clusters(self) -> pd.DataFrame:
        frame = pd.DataFrame({"record_key": list(self.groups), "label": list(self.groups.values())})
        frame["cluster_id"] = frame.groupby("label")["record_key"].transform("min")
        return frame[["record_key", "cluster_id"]]

    def run(self, clusters: pd.DataFrame | None = None) -> IdAssignment:
        """One golden stage: assign ids and record what it wrote, as golden_stage does."""
        clusters = self.clusters() if clusters is None else clusters
        run_id = self.run_id()
        out = assign_golden_ids(clusters, self.previous(), self.golden_ages(), pd.Series(self.first_seen))
        sizes = clusters.groupby("cluster_id").size()
        for cluster_id, gid in out.ids.items():
            row = self.golden.setdefault(gid, {"created_run": run_id})
            row.update(status="active", retired_into=None, size=int(sizes[cluster_id]), updated_run=run_id)
        for r in out.retired.itertuples(index=False):
            self.golden[r.golden_id].update(status="retired", retired_into=r.retired_into, updated_run=run_id)
        self.xref = dict(zip(clusters["record_key"], clusters["cluster_id"].map(out.ids)))
        self.origins = out.origins.to_dict()
        self.runs += 1
        return out

    def previous(self) -> pd.DataFrame:
        return pd.DataFrame({"record_key": list(self.xref), "golden_id": list(self.xref.values()),
                             "origin_id": [self.origins[k] for k in self.xref]},
                            columns=["record_key", "golden_id", "origin_id"])

    def golden_ages(self) -> pd.DataFrame:
        return pd.DataFrame([{"golden_id": g, "created_run": r["created_run"], "updated_run": r["updated_run"],
                              "member_count": r["size"], "status": r["status"]} for g, r in self.golden.items()],
                            columns=["golden_id", "created_run", "updated_run", "member_count", "status"])

    def copy(self) -> Migration:
        return Migration(dict(self.groups), dict(self.first_seen), dict(self.xref), dict(self.origins),
                         {g: dict(r) for g, r in self.golden.items()}, self.runs, self.counter)


def _age(m: Migration, golden_id: str) -> tuple:
    """How golden records rank for survival in a merge: older, then larger, then smaller id."""
    row = m.golden[golden_id]
    return row["created_run"], -row["size"], golden_id


def _check_run(before: Migration, after: Migration, out: IdAssignment) -> None:
    clusters = after.clusters()
    ids = clusters["cluster_id"].map(out.ids)
    per_cluster = out.ids.reindex(clusters["cluster_id"].unique())
    # Every cluster has an id of its own.
    assert per_cluster.notna().all()
    assert per_cluster.is_unique
    now_active = set(per_cluster)
    was_active = {g for g, r in before.golden.items() if r["status"] == "active"}
    record_id = dict(zip(clusters["record_key"], ids))
    retired = dict(zip(out.retired["golden_id"], out.retired["retired_into"]))

    for old_id in was_active:
        members = [k for k, g in before.xref.items() if g == old_id and k in after.groups]
        if not members:
            # All its records are gone: retired pointing nowhere.
            assert retired.get(old_id, "missing") is None
            continue
        # Its oldest member: one it held before any merge (home) first, then first seen, then key.
        oldest = min(members, key=lambda k: (before.origins[k] != old_id, after.first_seen[k], k))
        holder = record_id[oldest]
        if holder != old_id:
            # It merged into an older (or, as old, larger) golden record that kept its id.
            assert retired[old_id] == holder
            assert holder in was_active and _age(before, holder) < _age(before, old_id)
        else:
            assert old_id not in retired
    # Retired ids point at ids active now, or nowhere.
    assert all(target is None or target in now_active for target in retired.values())
    # New ids are fresh, or a retired id given back; each gets exactly one birth event.
    born = now_active - was_active
    births = out.events[out.events["event"].isin(["created", "split", "restored"])]
    assert sorted(births["golden_id"]) == sorted(born)
    for gid in born:
        assert gid not in before.golden or before.golden[gid]["status"] == "retired"
    assert set(out.events.loc[out.events["event"] == "retired", "golden_id"]) == set(retired)


@SETTINGS
@given(st.lists(change, min_size=1, max_size=8))
def test_ids_follow_the_rules_under_any_sequence_of_changes(changes):
    m = Migration()
    for kind, a, b, c in changes:
        before = m.copy()
        m.apply(kind, a, b, c)
        out = m.run()
        _check_run(before, m, out)


@FEWER
@given(st.lists(change, min_size=1, max_size=8))
def test_an_unchanged_rerun_changes_no_id_and_records_no_event(changes):
    m = Migration()
    for kind, a, b, c in changes:
        m.apply(kind, a, b, c)
        m.run()
    ids_before = dict(m.xref)
    out = m.run()
    assert m.xref == ids_before
    assert out.events.empty and out.retired.empty


@FEWER
@given(st.lists(change, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_ids_do_not_depend_on_row_order(changes, rnd):
    m = Migration()
    for kind, a, b, c in changes:
        m.apply(kind, a, b, c)
        m.run()
    m.apply("merge", 1, 2, 0)
    clusters = m.clusters()
    rows = list(range(len(clusters)))
    rnd.shuffle(rows)
    first = assign_golden_ids(clusters, m.previous(), m.golden_ages(), pd.Series(m.first_seen))
    second = assign_golden_ids(clusters.iloc[rows], m.previous().sample(frac=1, random_state=1),
                               m.golden_ages().sample(frac=1, random_state=2), pd.Series(m.first_seen))
    assert first.ids.sort_index().equals(second.ids.sort_index())


@FEWER
@given(st.lists(change, min_size=2, max_size=6), st.integers(0, 50), st.integers(0, 50))
def test_a_merge_undone_gives_every_record_its_id_back(changes, a, b):
    m = Migration()
    for kind, x, y, z in changes:
        m.apply(kind, x, y, z)
        m.run()
    m.apply("add", 0, 0, 0)  # two records of their own, so there are always two clusters to merge
    m.apply("add", 0, 0, 0)
    m.run()
    labels = sorted(set(m.groups.values()))
    first, second = labels[a % len(labels)], labels[b % len(labels)]
    original = dict(m.xref)
    grouping = dict(m.groups)
    m.apply("merge", labels.index(first), labels.index(second), 0)
    m.run()
    m.groups = grouping  # the steward unmerges: the records are apart again
    m.run()
    assert m.xref == original


def test_a_growing_cluster_keeps_its_id_and_says_it_grew():
    m = Migration()
    m.groups = {"a:1": 1}
    m.first_seen = {"a:1": "run0001"}
    m.run()
    gid = m.xref["a:1"]
    m.groups["b:1"] = 1
    m.first_seen["b:1"] = "run0002"
    out = m.run()
    assert m.xref == {"a:1": gid, "b:1": gid}
    assert out.events[["golden_id", "event"]].values.tolist() == [[gid, "grown"]]


def test_in_a_merge_the_older_golden_record_survives_even_when_smaller():
    m = Migration()
    m.groups = {"z:1": 1}
    m.first_seen = {"z:1": "run0001"}
    m.run()
    m.groups.update({"a:1": 2, "a:2": 2, "a:3": 2})
    m.first_seen.update({k: "run0002" for k in ("a:1", "a:2", "a:3")})
    m.run()
    old, young = m.xref["z:1"], m.xref["a:1"]
    m.groups = {k: 1 for k in m.groups}
    out = m.run()
    assert set(m.xref.values()) == {old}
    assert out.retired.values.tolist() == [[young, old]]
    assert m.golden[young] == {**m.golden[young], "status": "retired", "retired_into": old}


def test_a_split_leaves_the_id_with_the_part_holding_the_oldest_record():
    m = Migration()
    m.groups = {"b:1": 1}
    m.first_seen = {"b:1": "run0001"}
    m.run()
    m.groups["a:1"] = 1
    m.first_seen["a:1"] = "run0002"
    m.run()
    gid = m.xref["b:1"]
    m.groups["a:1"] = 2  # the younger record (with the smaller key) splits off
    out = m.run()
    assert m.xref["b:1"] == gid and m.xref["a:1"] != gid
    assert out.events.loc[out.events["golden_id"] == m.xref["a:1"], ["event", "other_id"]].values.tolist() == [
        ["split", gid]]


def test_an_unmerged_cluster_gets_its_id_back_even_when_a_smaller_key_joined_it_later():
    m = Migration()
    m.groups = {"z:1": 1, "b:1": 2, "b:2": 2, "b:3": 2}
    m.first_seen = dict.fromkeys(m.groups, "run0001")
    m.run()
    m.groups["y:1"] = 1  # joins z:1's golden record, and is now its smallest key
    m.first_seen["y:1"] = "run0002"
    m.run()
    before = dict(m.xref)
    grouping = dict(m.groups)
    m.groups = dict.fromkeys(m.groups, 2)  # one merge: the larger golden record keeps its id
    m.run()
    assert set(m.xref.values()) == {before["b:1"]}
    m.groups = grouping  # and undone
    m.run()
    assert m.xref == before
