"""Why two records match or not: each comparison's level and weight, as a waterfall."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rules.match.features import Columns
from rules.match.model import with_settings
from rules.match.scoring import (compare_partition, comparison_weights, pair_frame, prepare, prior_weight,
                                 weigh_partition)
from rules.match.settings import MatchSettings

#: Columns of an explanation.
WATERFALL_COLUMNS = ["step", "comparison", "value_l", "value_r", "level", "m", "u", "weight",
                     "cumulative_weight", "probability"]


def explain(record_l: pd.Series, record_r: pd.Series, settings: MatchSettings, model: dict) -> pd.DataFrame:
    """The waterfall of one pair, scored or not: prior, one row per comparison, tiers, final.

    Each comparison row has both values, the level the pair reached, its m and u and the
    weight (log2 of m/u; 0 when a value is missing); a term-frequency row follows a comparison
    whose common or rare value shifted the weight. ``cumulative_weight`` and ``probability``
    run down the rows; the last row is the final match probability, after any deterministic
    tier (a shared strong identifier, a guard).

    Example:
        >>> from bench.synthetic import generate
        >>> from rules.match import link
        >>> records = generate(300, seed=3)
        >>> s = MatchSettings.model_validate({"blocking": [["last_name"]],
        ...     "compare": {"first_name": "name", "last_name": "name"}})
        >>> model = link(records, s).model
        >>> w = explain(records.iloc[0], records.iloc[1], s, model)
        >>> w["step"].tolist()[0], w["step"].tolist()[-1]
        ('prior', 'final')
    """
    model = with_settings(model, settings)
    records = pd.DataFrame([record_l, record_r]).reset_index(drop=True)
    cols = Columns(records)
    pairs = pair_frame(prepare(cols, settings, tf_tables=model["tf"]), np.array([0]), np.array([1]))
    gammas = compare_partition(pairs, settings.comparisons())
    weights = comparison_weights(pairs, gammas, model)
    rows = [{"step": "prior", "weight": prior_weight(model)}]
    for c in settings.comparisons():
        params = model["comparisons"][c.id]
        gamma = int(gammas[c.id][0])
        value_l, value_r = cols[c.field].text().take(np.arange(2)).to_pylist()
        found = gamma >= 0
        rows.append({"step": "comparison", "comparison": c.name, "value_l": value_l, "value_r": value_r,
                     "level": params["levels"][gamma] if found else "missing",
                     "m": params["m"][gamma] if found else None, "u": params["u"][gamma] if found else None,
                     "weight": float(weights[c.id][0][0])})
        if weights[c.id][1][0]:
            rows.append({"step": "term frequency", "comparison": c.name, "value_l": value_l, "value_r": value_r,
                         "weight": float(weights[c.id][1][0])})
    frame = pd.DataFrame(rows, columns=WATERFALL_COLUMNS)
    frame["cumulative_weight"] = frame["weight"].cumsum()
    frame["probability"] = 1.0 / (1.0 + np.exp2(-frame["cumulative_weight"]))
    scored = weigh_partition(pairs, gammas, model).iloc[0]
    final = {"step": "final", "level": scored["match_tier"], "weight": np.nan,
             "cumulative_weight": scored["match_weight"], "probability": scored["match_probability"]}
    return pd.concat([frame, pd.DataFrame([final])], ignore_index=True)


def waterfall_text(waterfall: pd.DataFrame) -> str:
    """The waterfall as a plain-text table for the terminal."""
    shown = waterfall.copy()
    for col in ("m", "u"):
        shown[col] = shown[col].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.2e}")
    for col in ("weight", "cumulative_weight"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:+.2f}")
    shown["probability"] = shown["probability"].map(lambda v: f"{v:.6f}")
    return shown.fillna("").to_string(index=False)
