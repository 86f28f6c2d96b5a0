"""Accuracy floors, measured with margin: pairwise F1 of the clusters against the truth.

Measured at the time of writing (docs/benchmarks.md, "Matching"): FEBRL4 0.998, FEBRL3 0.998,
synthetic 20,000 rows 0.956 (100,000 rows: 0.957). Splink on the same data, blocking and
machine: 0.998, 0.997, and 0.914 at 100,000 rows.
"""

from __future__ import annotations

import pytest

from bench.match_vs_splink import SCENARIOS, febrl, pairwise_scores, run_ours
from bench.synthetic import generate


def f1_of(records) -> float:
    truth = records.pop("entity_id").set_axis(records["record_key"])
    scenario = SCENARIOS["synthetic" if "emails" in records and records["emails"].map(len).any() else "febrl"]
    clusters, _, _ = run_ours(records, scenario)
    return pairwise_scores(clusters, truth)["f1"]


def test_febrl4_f1_above_0_98():
    assert f1_of(febrl("febrl4")) > 0.98


def test_febrl3_f1_above_0_98():
    assert f1_of(febrl("febrl3")) > 0.98


@pytest.mark.parametrize("seed", [42])
def test_synthetic_typos_nicknames_scripts_f1_above_0_93(seed):
    assert f1_of(generate(20_000, seed=seed)) > 0.93
