"""The match stage: staged records in, pairs and clusters out (workspace to workspace)."""

from __future__ import annotations

import logging

import pandas as pd
import sqlalchemy as sa

from migrate.project import Project
from migrate.workspace import Workspace, clusters, encode_frame, pairs, read_table, records
from rules.match.cluster import cluster_pairs
from rules.match.deterministic import deterministic_pairs

log = logging.getLogger("crm_migrate")

MATCH_COLUMNS = ["record_key", "source", "first_name", "last_name", "organization_name", "emails", "phones",
                 "birth_date", "postcode", "street", "city", "country", "name_key"]


def match_stage(project: Project, ws: Workspace, run_id: str) -> pd.DataFrame:
    """Link staged records and cluster them; replaces the pairs and clusters tables."""
    recs = read_table(ws, records, MATCH_COLUMNS)
    settings = project.config.rules.match
    found = deterministic_pairs(recs, settings.deterministic)
    found["match_weight"] = None
    found["match_probability"] = 1.0
    found["run_id"] = run_id
    clustered = cluster_pairs(recs["record_key"], found)
    with ws.begin() as conn:
        conn.execute(sa.delete(pairs))
        conn.execute(sa.delete(clusters))
        ws.insert(conn, pairs, encode_frame(found, pairs))
        ws.insert(conn, clusters, encode_frame(clustered, clusters))
    multi = clustered["cluster_id"].duplicated(keep=False).sum()
    log.info("match: %s records, %s pairs, %s records in multi-record clusters",
             f"{len(recs):,}", f"{len(found):,}", f"{multi:,}")
    return clustered
