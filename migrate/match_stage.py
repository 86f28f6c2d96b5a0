"""The match stage: staged records in, pairs and clusters out (workspace to workspace)."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from migrate.match_model import load_model, save_model
from migrate.progress import StageProgress
from migrate.project import Project
from migrate.review import cluster_with_decisions, constraints, refresh_queue, steward_kept, with_decisions
from migrate.workspace import Workspace, clusters, encode_frame, pairs, read_table, records
from rules.match import MatchSettings, link
from rules.match.explain import explain
from rules.match.deterministic import deterministic_pairs

log = logging.getLogger("crm_migrate")

MATCH_COLUMNS = ["record_key", "source", "first_name", "last_name", "organization_name", "emails", "phones",
                 "birth_date", "postcode", "street", "city", "country", "name_key", "identifiers"]


def match_stage(project: Project, ws: Workspace, run_id: str, retrain: bool = False) -> pd.DataFrame:
    """Link staged records and cluster them, honouring steward decisions; replaces the pairs and clusters tables.

    With ``rules.match.blocking``/``compare`` the probabilistic matcher runs (its model is
    trained once, kept in the workspace and reused until ``retrain``); otherwise the
    deterministic rules. Uncertain pairs and oversized clusters go to the review queue;
    an oversized cluster is not merged until a steward decides.
    """
    recs = read_table(ws, records, MATCH_COLUMNS)
    settings = project.config.rules.match
    decided = constraints(ws)
    if isinstance(settings, MatchSettings):
        found, clustered, review_pairs, oversized = _probabilistic(ws, recs, settings, decided, retrain)
    else:
        found = deterministic_pairs(recs, settings.deterministic)
        found["match_weight"] = None
        found["match_probability"] = 1.0
        found = with_decisions(found, decided)
        clustered = cluster_with_decisions(recs["record_key"], found, decided)
        # Deterministic matching leaves nothing uncertain: no pairs to review, no cluster too big.
        review_pairs, oversized = found.iloc[0:0], pd.DataFrame(columns=["cluster_id"])
    found["run_id"] = run_id
    with ws.begin() as conn:
        conn.execute(sa.delete(pairs))
        conn.execute(sa.delete(clusters))
        ws.insert(conn, pairs, encode_frame(found, pairs))
        ws.insert(conn, clusters, encode_frame(clustered, clusters))
    held = refresh_queue(project, ws, run_id, review_pairs, oversized)
    multi = clustered["cluster_id"].duplicated(keep=False).sum()
    log.info("match: %s records, %s pairs, %s records in multi-record clusters, %s items for review",
             f"{len(recs):,}", f"{len(found):,}", f"{multi:,}", f"{held:,}")
    return clustered


def _probabilistic(ws: Workspace, recs: pd.DataFrame, settings: MatchSettings, decided: Any,
                   retrain: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    model = None if retrain else load_model(ws)
    if model is not None and model.get("settings_fingerprint") != _fingerprint(settings):
        log.info("match: the comparisons changed since the model was trained; retraining")
        model = None
    pairs_only = ["record_key_l", "record_key_r"]
    with StageProgress() as report:
        result = link(recs, settings, model=model, must_link=decided.must_link[pairs_only],
                      cannot_link=decided.cannot_link[pairs_only], progress=report)
    if model is None:
        save_model(ws, {**result.model, "settings_fingerprint": _fingerprint(settings)})
    scored = result.pairs
    gammas = [c for c in scored.columns if c.startswith("gamma_")]
    kept = scored[scored["match_probability"] >= settings.thresholds.review].copy()
    kept["levels"] = kept[gammas].to_dict("records") if gammas else [{}] * len(kept)
    kept["rule"] = kept["match_tier"].astype(str) if "match_tier" in kept else "probabilistic"
    found = kept[["record_key_l", "record_key_r", "match_weight", "match_probability", "levels", "rule"]]
    clustered = result.clusters.copy()
    oversized = result.oversized if isinstance(result.oversized, pd.DataFrame) else \
        pd.DataFrame({"cluster_id": list(result.oversized)})
    oversized = clustered[clustered["cluster_id"].isin(set(oversized["cluster_id"]))]
    # A cluster a steward kept together (decided with match) is reviewed: it merges.
    oversized = oversized[~oversized["cluster_id"].isin(steward_kept(oversized, decided))]
    held = clustered["record_key"].isin(oversized["record_key"])
    clustered.loc[held, "cluster_id"] = clustered.loc[held, "record_key"]  # singletons until a steward decides
    review = result.review_pairs.copy()
    if gammas and len(review):
        review["levels"] = review[[g for g in gammas if g in review]].to_dict("records")
        review["waterfall"] = _waterfalls(recs, review, settings, result.model)
    return found.reset_index(drop=True), clustered, review, oversized


#: Review pairs explained in full for the steward page; a larger queue gets levels only.
WATERFALL_LIMIT = 5_000


def _waterfalls(recs: pd.DataFrame, review: pd.DataFrame, settings: MatchSettings, model: dict) -> list:
    """The explanation rows of each review pair (what the review page draws as a waterfall)."""
    if len(review) > WATERFALL_LIMIT:
        return [None] * len(review)
    by_key = recs.set_index("record_key", drop=False)
    out = []
    for left, right in zip(review["record_key_l"], review["record_key_r"]):
        rows = explain(by_key.loc[left], by_key.loc[right], settings, model)
        out.append(json.loads(rows.to_json(orient="records")))
    return out


def _fingerprint(settings: MatchSettings) -> str:
    text = json.dumps(settings.model_dump(mode="json", exclude={"thresholds", "max_cluster_size"}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
