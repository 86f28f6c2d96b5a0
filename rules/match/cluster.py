"""Clustering linked records: connected components over the link graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def cluster_pairs(record_keys: pd.Series, pairs: pd.DataFrame) -> pd.DataFrame:
    """Connected components: every record gets ``cluster_id`` = the smallest key in its cluster.

    Records in no pair are singletons (their own cluster).

    Example:
        >>> keys = pd.Series(["a", "b", "c", "d"])
        >>> pairs = pd.DataFrame({"record_key_l": ["b", "c"], "record_key_r": ["c", "d"]})
        >>> cluster_pairs(keys, pairs)["cluster_id"].tolist()
        ['a', 'b', 'b', 'b']
    """
    keys = pd.Index(record_keys.astype(str).unique())
    n = len(keys)
    left = keys.get_indexer(pairs["record_key_l"].astype(str)) if len(pairs) else np.array([], dtype=int)
    right = keys.get_indexer(pairs["record_key_r"].astype(str)) if len(pairs) else np.array([], dtype=int)
    known = (left >= 0) & (right >= 0)
    graph = coo_matrix((np.ones(known.sum(), dtype=np.int8), (left[known], right[known])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame({"record_key": keys, "component": labels})
    frame["cluster_id"] = frame.groupby("component")["record_key"].transform("min")
    return frame[["record_key", "cluster_id"]]
