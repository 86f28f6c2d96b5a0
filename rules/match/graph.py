"""Clusters from linked pairs that honour cannot-link decisions, and the cluster-size guard.

Works on record positions, not keys (a string group-by over a million keys takes minutes);
:func:`cluster_keys` is the front for callers that name records by key.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rules.match import memory

Keys = np.ndarray | pd.api.extensions.ExtensionArray
"""Record keys, one per position: a NumPy object array or a pandas (e.g. Arrow-backed) array."""


def cluster_keys(record_keys: pd.Series, pairs: pd.DataFrame, cannot_link: pd.DataFrame | None = None,
                 strength: np.ndarray | None = None) -> pd.DataFrame:
    """Clusters of records named by key: ``record_key, cluster_id`` (the smallest key in the cluster).

    ``pairs`` and ``cannot_link`` hold ``record_key_l, record_key_r``; pairs naming unknown records
    are ignored and records in no pair are singletons. A cluster that would join a cannot-link
    pair is rebuilt from its links strongest first (``strength``, one per pair; default all equal).

    Example:
        >>> keys = pd.Series(["a", "b", "c", "d"])
        >>> pairs = pd.DataFrame({"record_key_l": ["b", "c"], "record_key_r": ["c", "d"]})
        >>> cluster_keys(keys, pairs)["cluster_id"].tolist()
        ['a', 'b', 'b', 'b']
    """
    keys = pd.Index(record_keys.astype(str).unique())
    cannot = pairs.iloc[0:0] if cannot_link is None else cannot_link
    (left, right), (c_left, c_right) = ((keys.get_indexer(p["record_key_l"]), keys.get_indexer(p["record_key_r"]))
                                        for p in (pairs, cannot))
    known, c_known = (left >= 0) & (right >= 0), (c_left >= 0) & (c_right >= 0)
    strength = np.ones(len(pairs)) if strength is None else strength
    _, ids = constrained_clusters(keys.to_numpy(dtype=object), left[known], right[known], strength[known],
                                  c_left[c_known], c_right[c_known])
    return pd.DataFrame({"record_key": keys, "cluster_id": ids})


def constrained_clusters(keys: Keys, left: np.ndarray, right: np.ndarray, strength: np.ndarray,
                         cannot_left: np.ndarray, cannot_right: np.ndarray) -> tuple[np.ndarray, Keys]:
    """Connected components of the links ``(left[i], right[i])``, split where they join a cannot-link pair.

    Records are positions into ``keys``. A chain of links can join two records a steward said
    are different (A-B, B-C, but not A-C); such a component is rebuilt greedily: its links are
    added strongest first, skipping any that would put a cannot-link pair in one cluster.

    Returns a cluster label per record and its ``cluster_id``, the smallest key in its cluster.

    Example:
        >>> keys = np.array(["a", "b", "c"], dtype=object)
        >>> labels, ids = constrained_clusters(keys, np.array([0, 1]), np.array([1, 2]),
        ...     np.array([0.99, 0.97]), np.array([0]), np.array([2]))
        >>> ids.tolist()
        ['a', 'a', 'c']
    """
    labels = _components(len(keys), left, right)
    memory.release()  # the sparse graph's buffers, before the keys are sorted
    joined = labels[cannot_left] == labels[cannot_right]
    broken = np.unique(labels[cannot_left][joined])
    if len(broken):
        inside = np.isin(labels[left], broken)
        order = np.argsort(-strength[inside], kind="stable")
        members = np.flatnonzero(np.isin(labels, broken))
        local = np.full(len(labels), -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        roots = _greedy(len(members), local[left[inside][order]], local[right[inside][order]],
                        local[cannot_left[joined]], local[cannot_right[joined]])
        # Fresh labels past the old ones, so split parts never collide with other clusters.
        labels[members] = labels.max() + 1 + members[roots]
        labels = np.unique(labels, return_inverse=True)[1]
        memory.release()
    return labels, _smallest_key(keys, labels)


def oversized(labels: np.ndarray, ids: Keys, max_size: int) -> list[str]:
    """Cluster ids with more than ``max_size`` records: held for review instead of merged."""
    big = np.flatnonzero(np.bincount(labels) > max_size)
    if not len(big):
        return []
    first = np.unique(labels, return_index=True)[1]
    return sorted(np.asarray(ids.take(first[big]), dtype=object).tolist())


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _smallest_key(keys: Keys, labels: np.ndarray) -> Keys:
    """Per record, the smallest key among the records sharing its label (a record alone is its own).

    The keys of records in a shared label are ranked by one string sort; the smallest rank per
    label is then a NumPy reduction, cheaper than sorting by label and key together.
    """
    rep = np.arange(len(labels), dtype=np.int32)  # positions: 4 bytes a record are enough
    shared = np.flatnonzero(np.bincount(labels)[labels] > 1).astype(np.int32)
    if len(shared):
        text = keys.take(shared)
        text = pa.array(text) if isinstance(text, pd.arrays.ArrowExtensionArray) else pa.array(np.asarray(text, object))
        by_rank = pc.sort_indices(text).to_numpy()
        del text
        rank = np.empty(len(shared), dtype=np.int32)
        rank[by_rank] = np.arange(len(shared), dtype=np.int32)
        smallest = np.full(labels.max() + 1, len(shared), dtype=np.int32)
        shared_labels = labels[shared]
        np.minimum.at(smallest, shared_labels, rank)
        rep[shared] = shared[by_rank[smallest[shared_labels]]]
    return keys.take(rep)


def _greedy(n: int, left: np.ndarray, right: np.ndarray, c_left: np.ndarray, c_right: np.ndarray) -> np.ndarray:
    """Union-find over links in the given order, refusing unions that join a cannot-link pair.

    Records are numbered ``0..n-1``. Runs only over the components a cannot-link pair breaks,
    so a loop is fine here; lists indexed by record keep it cheap. Each root keeps its members
    and the records they must not join, so a union is checked with one set operation. Returns
    the root of every record.
    """
    parent = list(range(n))
    members: list[list[int] | None] = [None] * n  # None: the record alone
    banned: list[set[int] | None] = [None] * n
    for a, b in zip(c_left.tolist(), c_right.tolist()):
        for x, y in ((a, b), (b, a)):
            if banned[x] is None:
                banned[x] = set()
            banned[x].add(y)  # type: ignore[union-attr]

    def root(x: int) -> int:
        while (up := parent[x]) != x:
            parent[x] = parent[up]
            x = up
        return x

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = root(a), root(b)
        if ra == rb or (banned[ra] is not None and not banned[ra].isdisjoint(members[rb] or (rb,))):  # type: ignore[union-attr]
            continue
        if len(members[ra] or ()) < len(members[rb] or ()):
            ra, rb = rb, ra
        parent[rb] = ra
        if members[ra] is None:
            members[ra] = [ra]
        members[ra].extend(members[rb] or (rb,))  # type: ignore[union-attr]
        members[rb] = None
        if banned[rb] is not None:
            if banned[ra] is None:
                banned[ra] = set()
            banned[ra].update(banned[rb])  # type: ignore[union-attr]
            banned[rb] = None
    roots = np.array(parent)
    while not np.array_equal(up := roots[roots], roots):  # pointer jumping: every record to its root
        roots = up
    return roots
