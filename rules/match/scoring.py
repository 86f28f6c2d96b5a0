"""Scoring: prepared records, the pair frame of a partition, and the pure partition scorer.

:func:`score_partition` is the engine seam: a DataFrame of candidate pairs (both records'
matching keys, suffixed ``_l`` and ``_r``) and the model dict in, scored pairs out, with no other
input and no side effect. The in-process engine calls it per chunk; a distributed engine can
run it per block partition unchanged (e.g. Spark's ``applyInPandas``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from rules.match import features as fx
from rules.match.comparisons import KINDS, column
from rules.match.settings import Comparison, MatchSettings

#: Deterministic tiers a scored pair can carry instead of ``model``.
TIER_MODEL, TIER_IDENTIFIER, TIER_GUARD = "model", "identifier", "guard"
#: The tiers :func:`weigh` numbers, in the order of their codes.
TIERS = (TIER_MODEL, TIER_IDENTIFIER, TIER_GUARD)


@dataclass
class Prepared:
    """Matching keys of a set of records, per distinct value until pairs need them.

    ``features`` maps each prepared column (``<comparison>__<feature>``, ``strong__<i>``) to a
    :class:`rules.match.features.Keyed`; ``record_key`` holds the records' keys.
    """

    record_key: np.ndarray | pd.api.extensions.ExtensionArray
    features: dict[str, fx.Keyed]

    def __len__(self) -> int:
        return len(self.record_key)

    @property
    def columns(self) -> list[str]:
        """The prepared columns, the record key first."""
        return ["record_key", *self.features]

    def subset(self, rows: np.ndarray) -> Prepared:
        """The records at ``rows`` only."""
        return Prepared(self.record_key.take(rows), {k: f.subset(rows) for k, f in self.features.items()})

    def select(self, columns: list[str]) -> Prepared:
        """The same records with some prepared columns only (the others can be freed)."""
        return Prepared(self.record_key, {k: self.features[k] for k in columns})


def prepare(records: pd.DataFrame | fx.Columns, settings: MatchSettings,
            tf_tables: dict[str, dict] | None = None) -> Prepared:
    """Matching keys for each record: one column per comparison feature, plus strong identifiers.

    Term frequencies come from the records themselves, or, with ``tf_tables`` (a trained model's
    ``tf``), from the model: that is how two records alone are explained as in the full run.
    """
    cols = records if isinstance(records, fx.Columns) else fx.Columns(records)
    out: dict[str, fx.Keyed] = {}
    for c in settings.comparisons():
        kind = KINDS[c.kind]
        for feature, values in kind.features(cols, c).items():
            out[column(c, feature)] = values
        if kind.tf_feature and tf_tables is not None and c.id in tf_tables:
            table = tf_tables[c.id]
            values = kind.tf_values(cols, c)
            text = pd.Series(values.values.to_numpy(zero_copy_only=False))
            looked_up = text.map(table["values"]).fillna(table["default"]).where(text.notna())
            out[column(c, kind.tf_feature)] = values.keyed(looked_up.to_numpy(np.float32), np.float32(np.nan))
    for i, field in enumerate(settings.strong_identifiers):
        out[f"strong__{i}"] = cols[field].map(fx.identifier_key).hashes()
    keys = cols.records["record_key"]
    return Prepared(keys.array if isinstance(keys.dtype, pd.ArrowDtype) else keys.to_numpy(object), out)


class PairColumns(Mapping[str, "np.ndarray | pa.Array"]):
    """The pairs ``(left[i], right[i])`` with both records' keys side by side (``_l``/``_r``), as arrays.

    A column is looked up when read, not kept (a comparison keeps the few it reads while it
    runs), and :meth:`at` gives a column for some pairs only: a fuzzy comparison reads the text
    of the distinct pairs it scores, not of every pair.
    """

    def __init__(self, prepared: Prepared, left: np.ndarray, right: np.ndarray, columns: list[str] | None = None):
        self._prepared, self._positions = prepared, {"_l": left, "_r": right}
        self._names = {f"{name}{side}": name for name in (prepared.columns if columns is None else columns)
                       for side in ("_l", "_r")}
        # Features derived from one field share its codes: each field's codes are looked up once.
        self._codes: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __getitem__(self, key: str) -> np.ndarray | pa.Array:
        return self.at(key)

    def at(self, key: str, rows: np.ndarray | None = None) -> np.ndarray | pa.Array:
        """Column ``key`` for the pairs at ``rows`` (all pairs when None)."""
        name, side = self._names[key], key[-2:]
        feature = self._prepared.features.get(name)
        if feature is None:
            positions = self._positions[side]
            return self._prepared.record_key.take(positions if rows is None else positions[rows])
        field = (id(feature.codes), side)
        if field not in self._codes:
            self._codes[field] = feature.codes[self._positions[side]]
        codes = self._codes[field]
        return feature.lookup(codes if rows is None else codes[rows])


def pair_columns(prepared: Prepared, left: np.ndarray, right: np.ndarray,
                 columns: list[str] | None = None) -> PairColumns:
    """The pairs ``(left[i], right[i])`` as :class:`PairColumns`; ``columns`` limits them to some prepared columns."""
    return PairColumns(prepared, left, right, columns)


def pair_frame(prepared: Prepared, left: np.ndarray, right: np.ndarray, columns: list[str] | None = None
               ) -> pd.DataFrame:
    """The pairs ``(left[i], right[i])`` with both records' keys side by side (``_l``/``_r``).

    ``columns`` limits the frame to some prepared columns.
    """
    data = {name: pd.arrays.ArrowExtensionArray(values) if isinstance(values, pa.Array) else values
            for name, values in pair_columns(prepared, left, right, columns).items()}
    return pd.DataFrame(data, index=pd.RangeIndex(len(left)), copy=False)


Pairs = pd.DataFrame | Mapping[str, np.ndarray | pa.Array]
"""Candidate pairs: a pair frame, or the same columns as arrays (:func:`pair_columns`)."""


def _array(pairs: Pairs, key: str, rows: np.ndarray | None) -> np.ndarray | pa.Array:
    """A pair column (for the pairs at ``rows`` only, unless None) as NumPy, or as Arrow when it is
    Arrow text (Python strings only where needed)."""
    if isinstance(pairs, PairColumns):
        return pairs.at(key, rows)
    values = pairs[key]
    values = values if isinstance(values, pa.Array) else np.asarray(values)
    return values if rows is None else values.take(rows)


def compare_partition(pairs: Pairs, comparisons: list[Comparison]) -> dict[str, np.ndarray]:
    """The gamma (level) of every pair for every comparison."""
    out = {}
    for c in comparisons:
        # A comparison reads a feature several times; it is kept only while the comparison runs.
        read: dict[str, tuple[np.ndarray | pa.Array, np.ndarray | pa.Array]] = {}

        def sides(feature: str, rows: np.ndarray | None = None, c: Comparison = c, read: dict = read
                  ) -> tuple[np.ndarray | pa.Array, np.ndarray | pa.Array]:
            name = column(c, feature)
            if rows is not None:
                return _array(pairs, f"{name}_l", rows), _array(pairs, f"{name}_r", rows)
            if feature not in read:
                read[feature] = _array(pairs, f"{name}_l", None), _array(pairs, f"{name}_r", None)
            return read[feature]

        out[c.id] = KINDS[c.kind].gamma(sides, c)
    return out


def comparison_weights(pairs: Pairs, gammas: dict[str, np.ndarray], model: dict
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per comparison, the weight of each pair's level and its term-frequency adjustment (log2)."""
    out = {}
    for c in model_comparisons(model):
        params = model["comparisons"][c.id]
        m, u = np.asarray(params["m"]), np.asarray(params["u"])
        table = np.r_[0.0, np.log2(m / u)]  # index 0 is "missing": no evidence
        gamma = gammas[c.id]
        weight = table[gamma.astype(np.int16) + 1]
        adjust = np.zeros(len(gamma))
        kind = KINDS[c.kind]
        if c.tf and kind.tf_feature:
            levels = kind.levels(c)
            exact_u = u[levels.index("exact")]
            hit = np.isin(gamma, [levels.index(lv) for lv in kind.tf_levels])
            name = column(c, kind.tf_feature)
            tf = np.fmax(np.asarray(pairs[f"{name}_l"], np.float64), np.asarray(pairs[f"{name}_r"], np.float64))
            hit &= tf > 0
            adjust[hit] = np.log2(exact_u / tf[hit])
        out[c.id] = (weight, adjust)
    return out


def score_partition(pairs: pd.DataFrame, model: dict) -> pd.DataFrame:
    """Score candidate pairs with a trained model: pure, DataFrame in, DataFrame out.

    Returns ``record_key_l``, ``record_key_r``, ``match_weight``, ``match_probability``,
    ``match_tier`` (``model``, ``identifier`` when a strong identifier is shared, ``guard`` when
    a guard comparison forbids the link) and one ``gamma_<comparison>`` column per comparison.
    """
    return weigh_partition(pairs, compare_partition(pairs, model_comparisons(model)), model)


def weigh_partition(pairs: Pairs, gammas: dict[str, np.ndarray], model: dict) -> pd.DataFrame:
    """The second half of :func:`score_partition`, for pairs whose gammas are already known.

    ``pairs`` needs only the term frequencies and strong identifiers; record keys are carried
    over when present.
    """
    out = {key: pairs[key] for key in ("record_key_l", "record_key_r") if key in pairs}
    out.update(weigh(pairs, gammas, model))
    out["match_tier"] = tier_names(out["match_tier"])
    return pd.DataFrame(out, index=pairs.index if isinstance(pairs, pd.DataFrame) else None)


def weigh(pairs: Pairs, gammas: dict[str, np.ndarray], model: dict) -> dict[str, np.ndarray]:
    """Weights of pairs whose gammas are known, as arrays: ``match_weight``, ``match_probability``,
    ``match_tier`` (an index into :data:`TIERS`, one byte a pair) and the ``gamma_<comparison>`` columns.

    The frame-free core of :func:`weigh_partition`: a run keeps the few columns of the pairs it
    keeps and names their tiers once, instead of a frame with a string per pair and chunk.
    """
    settings = model_settings(model)
    weights = comparison_weights(pairs, gammas, model)
    n = len(next(iter(gammas.values())))
    total = np.full(n, prior_weight(model))
    for weight, adjust in weights.values():
        total += weight + adjust
    probability = 1.0 / (1.0 + np.exp2(-total))
    tier = np.zeros(n, dtype=np.int8)
    strong = np.zeros(n, dtype=bool)
    for i in range(len(settings.strong_identifiers)):
        left, right = np.asarray(pairs[f"strong__{i}_l"]), np.asarray(pairs[f"strong__{i}_r"])
        strong |= (left == right) & (left != 0)
    guarded = np.zeros(n, dtype=bool)
    for name in settings.guards:
        guarded |= gammas[_comparison_id(settings, name)] == 0
    tier[strong], probability[strong] = TIERS.index(TIER_IDENTIFIER), 1.0
    tier[guarded], probability[guarded] = TIERS.index(TIER_GUARD), 0.0
    out = {"match_weight": total, "match_probability": probability, "match_tier": tier}
    out.update({f"gamma_{cid}": g for cid, g in gammas.items()})
    return out


def tier_names(codes: np.ndarray) -> np.ndarray:
    """Tier indices (:data:`TIERS`) as the tier names, a Python string each (shared)."""
    return np.array(TIERS, dtype=object)[codes]


def weighing_columns(prepared: Prepared) -> list[str]:
    """The prepared columns :func:`weigh_partition` reads."""
    return [c for c in prepared.features if c.startswith("strong__") or c.endswith("__tf")]


def matching_columns(prepared: Prepared) -> list[str]:
    """The prepared columns :func:`score_partition` reads, all but the record key."""
    return list(prepared.features)


def prior_weight(model: dict) -> float:
    """log2 of the prior odds that two random records match."""
    prior = model["prior"]
    return float(np.log2(prior / (1.0 - prior)))


def model_settings(model: dict) -> MatchSettings:
    """The settings a model was trained with (the comparisons its parameters belong to)."""
    return MatchSettings.model_validate(model["settings"])


def model_comparisons(model: dict) -> list[Comparison]:
    """The resolved comparisons of a model."""
    return model_settings(model).comparisons()


def _comparison_id(settings: MatchSettings, name: str) -> str:
    return next(c.id for c in settings.comparisons() if c.name == name)

