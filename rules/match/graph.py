"""Clusters from linked pairs that honour cannot-link decisions, and the cluster-size guard.

Works on record positions, not keys, so a million records cluster in about a second (the
key-based ``rules.match.cluster.cluster_pairs`` spends minutes in a string group-by there).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def constrained_clusters(keys: np.ndarray, left: np.ndarray, right: np.ndarray, strength: np.ndarray,
                         cannot_left: np.ndarray, cannot_right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    broken = np.unique(labels[cannot_left][labels[cannot_left] == labels[cannot_right]])
    if len(broken):
        inside = np.isin(labels[left], broken)
        order = np.argsort(-strength[inside], kind="stable")
        roots = _greedy(left[inside][order], right[inside][order], cannot_left, cannot_right)
        members = np.flatnonzero(np.isin(labels, broken))
        # Fresh labels past the old ones, so split parts never collide with other clusters.
        labels[members] = labels.max() + 1 + np.array([roots.get(i, i) for i in members.tolist()], dtype=np.int64)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels, _smallest_key(keys, labels)


def oversized(labels: np.ndarray, ids: np.ndarray, max_size: int) -> list[str]:
    """Cluster ids with more than ``max_size`` records: held for review instead of merged."""
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes > max_size)
    first = np.unique(labels, return_index=True)[1]
    return sorted(ids[first[big]].tolist())


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _smallest_key(keys: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per record, the smallest key among the records sharing its label."""
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    smallest = np.minimum.reduceat(keys[order], starts)
    return smallest[labels]


def _greedy(left: np.ndarray, right: np.ndarray, c_left: np.ndarray, c_right: np.ndarray) -> dict[int, int]:
    """Union-find over links in the given order, refusing unions that join a cannot-link pair.

    Runs only over the few components a steward's decision breaks, so a loop is fine here.
    Returns each touched record's root.
    """
    parent: dict[int, int] = {}
    members: dict[int, set[int]] = {}
    forbidden: dict[int, set[int]] = {}
    for a, b in zip(c_left.tolist(), c_right.tolist()):
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)

    def root(x: int) -> int:
        parent.setdefault(x, x)
        members.setdefault(x, {x})
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = root(a), root(b)
        if ra == rb or any(forbidden.get(x, set()) & members[rb] for x in members[ra]):
            continue
        parent[rb] = ra
        members[ra] |= members.pop(rb)
    return {x: root(x) for x in list(parent)}
