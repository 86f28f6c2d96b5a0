"""Apply a mapping spec to a raw chunk: the map stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from connectors.base import SOURCE_REF
from mappings.canonical import LIST_FIELDS
from mappings.spec import FieldSpec, MappingSpec


def apply_mapping(raw: pd.DataFrame, spec: MappingSpec, source: str) -> pd.DataFrame:
    """Turn a raw chunk into canonical records: one row per raw row, same index.

    ``record_key`` is ``source:source_id``; without an id column the row reference is the
    id. Unmapped columns with a value are kept in ``extra`` (a dict), never dropped.
    ``row_hash`` fingerprints the raw row for change detection.

    Example:
        >>> raw = pd.DataFrame({"ID": ["7"], "SURNAME": ["Lee"], "NOTE": ["vip"], "_source_ref": ["line 2"]})
        >>> rec = apply_mapping(raw, MappingSpec.model_validate({"id": "ID", "fields": {"last_name": "SURNAME"}}), "erp")
        >>> rec.loc[0, ["record_key", "last_name", "extra"]].tolist()
        ['erp:7', 'Lee', '{"NOTE":"vip"}']
    """
    data_cols = [c for c in raw.columns if c != SOURCE_REF]
    absent = [c for c in spec.source_columns() if c not in raw.columns]
    if absent:  # sources whose records vary (JSON) may lack a mapped column in one chunk: it is empty there
        raw = raw.assign(**{c: None for c in absent})
    out = pd.DataFrame(index=raw.index)
    id_cols = spec.id_columns()
    if id_cols:
        source_id = id_text(raw[id_cols[0]])
        for col in id_cols[1:]:
            source_id = source_id + "|" + id_text(raw[col])
    else:
        source_id = raw[SOURCE_REF].astype(str).str.replace(" ", "", regex=False)
    out["source"] = source
    out["source_id"] = source_id.astype("object")
    out["record_key"] = (source + ":" + source_id).astype("object")
    out["source_ref"] = raw[SOURCE_REF].astype(str)

    for name, specs in spec.fields.items():
        if isinstance(specs, list):
            values = [_field(raw, s) for s in specs]
            out[name] = _to_lists(values, raw.index)
        else:
            out[name] = _field(raw, specs)
    for name in LIST_FIELDS:
        if name not in out:
            out[name] = [[] for _ in range(len(raw))]
    if spec.updated_at:
        out["source_updated_at"] = raw[spec.updated_at]

    mapped = set(spec.source_columns())
    unmapped = [c for c in data_cols if c not in mapped]
    out["extra"] = _extra(raw[unmapped]) if unmapped else "{}"
    hashed = pd.util.hash_pandas_object(raw[data_cols].astype(str), index=False) if data_cols else None
    out["row_hash"] = hashed.map("{:016x}".format).to_numpy() if hashed is not None else ""
    return out


def id_text(values: pd.Series) -> pd.Series:
    """Ids as trimmed strings; integral floats lose their '.0' (ids read as numbers).

    Related records use the same function on their parent key, so both sides agree.
    """
    if pd.api.types.is_float_dtype(values):
        as_int = values.dropna()
        if (as_int == np.floor(as_int)).all():
            values = values.astype("Int64")
    return values.astype("string").str.strip().fillna("")


def _field(raw: pd.DataFrame, spec: FieldSpec) -> pd.Series:
    if spec.value is not None:
        return pd.Series([spec.value] * len(raw), index=raw.index, dtype="object")
    if spec.column is not None:
        values = raw[spec.column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            values = values.astype("object").where(values.notna(), None)
            return values if not (spec.regex or spec.split or spec.map or spec.format) else _transform(
                values.astype("string"), spec)
        values = values.astype("string")
    else:
        parts = raw[spec.columns].astype("string").fillna("")
        values = parts.apply(lambda col: col.str.strip()).agg(spec.join.join, axis=1).str.strip()
        values = values.mask(values == "")
    return _transform(values, spec)


def _transform(values: pd.Series, spec: FieldSpec) -> pd.Series:
    if spec.regex:
        values = values.str.extract(f"({spec.regex})" if "(" not in spec.regex else spec.regex, expand=False)
        if isinstance(values, pd.DataFrame):
            values = values.iloc[:, 0]
    if spec.split is not None:
        values = values.str.split(spec.split).str[spec.index].str.strip()
    if spec.map:
        lookup = {str(k): v for k, v in spec.map.items()}
        mapped = values.map(lookup)
        values = mapped.where(values.isin(list(lookup)), values)
    if spec.format:
        parsed = pd.to_datetime(values, format=spec.format, errors="coerce")
        # An unparseable value is kept as written so validation can quarantine it with the value.
        values = parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), values)
    if spec.default is not None:
        values = values.fillna(spec.default)
    return values.astype("object").where(values.notna(), None)


def _to_lists(columns: list[pd.Series], index: pd.Index) -> pd.Series:
    cleaned = []
    for col in columns:
        text = col.astype("string").str.strip()
        present = (text.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)
        cleaned.append(text.astype(object).where(present, None).tolist())
    # zip over plain lists: several times faster than iterating DataFrame rows
    lists = [[v for v in values if v is not None] for values in zip(*cleaned)]
    return pd.Series(lists, index=index, dtype="object")


_NULL_MEMBER = r'"(?:[^"\\]|\\.)*":(?:null|""),?'


def json_rows(frame: pd.DataFrame) -> pd.Series:
    """Each row as compact JSON text without its empty members, via pandas' C encoder.

    Example:
        >>> json_rows(pd.DataFrame({"a": ["x", None], "b": [None, "é"]})).tolist()
        ['{"a":"x"}', '{"b":"é"}']
    """
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    text = frame.astype("object").where(frame.notna(), None).to_json(
        orient="records", lines=True, force_ascii=False, default_handler=str)
    lines = pd.Series(text.rstrip("\n").split("\n"), index=frame.index, dtype=object)
    return lines.str.replace(_NULL_MEMBER, "", regex=True).str.replace(",}", "}", regex=False)


def _extra(frame: pd.DataFrame) -> pd.Series:
    return json_rows(frame)


def to_json(value: object) -> str:
    """JSON text for list/dict canonical fields (workspace storage)."""
    return json.dumps(value, ensure_ascii=False, default=str)
