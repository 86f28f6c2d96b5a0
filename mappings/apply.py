"""Apply a mapping spec to a raw chunk: the map stage."""

from __future__ import annotations

import gc
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    out: dict[str, object] = {}
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
            out[name] = _to_lists([_field(raw, s) for s in specs], raw.index)
        else:
            out[name] = _field(raw, specs)
    for name in LIST_FIELDS:
        if name not in out:
            out[name] = [[] for _ in range(len(raw))]
    if spec.updated_at:
        out["source_updated_at"] = raw[spec.updated_at]

    mapped = set(spec.source_columns())
    unmapped = [c for c in data_cols if c not in mapped]
    out["extra"] = json_rows(raw[unmapped]) if unmapped else "{}"
    out["row_hash"] = _row_hashes(raw[data_cols]) if data_cols else ""
    return pd.DataFrame(out, index=raw.index)


def id_text(values: pd.Series) -> pd.Series:
    """Ids as trimmed strings; integral floats lose their '.0' (ids read as numbers).

    Related records use the same function on their parent key, so both sides agree.
    """
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        # Arrow, not ``.str``: the accessor and the column it is cached on form a reference cycle
        # that keeps the whole raw chunk alive until the cycle collector runs.
        trimmed = pc.utf8_trim_whitespace(pa.array(values, type=pa.string()))
        return pd.Series(trimmed.to_numpy(zero_copy_only=False), index=values.index, dtype=object)
    if pd.api.types.is_float_dtype(values):
        as_int = values.dropna()
        if (as_int == np.floor(as_int)).all():
            values = values.astype("Int64")
    if pd.api.types.is_numeric_dtype(values):  # digits only: nothing to trim
        return values.astype("string").fillna("")
    return values.astype("string").str.strip().fillna("")


def _is_text(values: pd.Series) -> bool:
    """True when every value is a str or missing: what files and text columns hold."""
    return _all_text(values) or (pd.api.types.is_object_dtype(values)
                                 and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"))


def _all_text(values: pd.Series) -> bool:
    """True when every value is a str, none missing: a file's columns as read."""
    return pd.api.types.is_object_dtype(values) and pd.api.types.infer_dtype(values, skipna=False) == "string"


def _arrow_text(values: pd.Series) -> pa.Array:
    """Values as an Arrow string array: text as is, anything else as ``str()`` gives it; missing is null."""
    if not _is_text(values):
        values = values.astype(str).where(values.notna(), None)
    return pa.array(values, type=pa.string(), from_pandas=True)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 16-hex-digit fingerprint of each row's values as text (``str()`` of each).

    Staged hashes of earlier versions are compared with these (change detection, review item
    versions), so the formula stays pandas' ``hash_pandas_object`` of ``frame.astype(str)``.
    Text columns go in as they are: pandas hashes a missing value as its ``str()`` already.
    """
    text = pd.DataFrame({i: values.to_numpy() if _is_text(values) else values.astype(str).to_numpy()
                         for i, (_, values) in enumerate(frame.items())}, index=frame.index)
    hashes = pd.util.hash_pandas_object(text, index=False, categorize=False).to_numpy()
    return np.frombuffer(hashes.astype(">u8").tobytes().hex().encode(), dtype="S16").astype(str).astype(object)


def _field(raw: pd.DataFrame, spec: FieldSpec) -> pd.Series:
    if spec.value is not None:
        return pd.Series([spec.value] * len(raw), index=raw.index, dtype="object")
    if spec.column is not None:
        values = raw[spec.column]
        if not (spec.regex or spec.split or spec.map or spec.format or spec.default is not None):
            if _all_text(values):
                return values
            if _is_text(values):
                return values.where(values.notna(), None)
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
    cleaned = [_nonempty(pc.utf8_trim_whitespace(_arrow_text(col))).to_numpy(zero_copy_only=False).tolist()
               for col in columns]
    # A list per row: tens of thousands of new objects would set off the cycle collector, which
    # walks the whole heap each time (and none of them can be part of a cycle).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if len(cleaned) == 1:
            lists = [[v] if v is not None else [] for v in cleaned[0]]
        else:  # zip over plain lists: several times faster than iterating DataFrame rows
            lists = [[v for v in values if v is not None] for values in zip(*cleaned)]
    finally:
        if collecting:
            gc.enable()
    # fromiter, not Series(lists): numpy would look into each list for a second dimension.
    return pd.Series(np.fromiter(lists, dtype=object, count=len(lists)), index=index, copy=False)


def _nonempty(text: pa.Array) -> pa.Array:
    """Empty strings made null."""
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def json_rows(frame: pd.DataFrame) -> pd.Series:
    """Each row as compact JSON text without its empty members (null or "").

    Text columns are encoded with Arrow's string kernels; other columns (numbers, dates from
    databases) with pandas' C encoder.

    Example:
        >>> json_rows(pd.DataFrame({"a": ["x", None], "b": [None, "é"]})).tolist()
        ['{"a":"x"}', '{"b":"é"}']
    """
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    members = [_json_members(frame.iloc[:, i], str(name)) for i, name in enumerate(frame.columns)]
    # Each member ends with a comma; the last one's is trimmed (no JSON value ends with one).
    body = pc.binary_join_element_wise(*members, "", null_handling="replace", null_replacement="")
    text = pc.binary_join_element_wise("{", pc.utf8_rtrim(body, characters=","), "}", "")
    return pd.Series(text.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


def _json_members(values: pd.Series, name: str) -> pa.Array:
    """``"name":value,`` for each value, null where the value is empty."""
    if _is_text(values):
        text = _nonempty(_arrow_text(values))
        return pc.binary_join_element_wise(json.dumps(name, ensure_ascii=False) + ':"', _json_escape(text), '",', "")
    lines = values.astype("object").where(values.notna(), None).to_frame(name).to_json(
        orient="records", lines=True, force_ascii=False, default_handler=str)
    members = pa.array([line[1:-1] + "," for line in lines.rstrip("\n").split("\n")], type=pa.string())
    empty = (values.isna() | (values.astype(object) == "")).to_numpy(dtype=bool)
    return pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), members)


#: JSON escapes of the control characters.
_CONTROL = {chr(i): json.dumps(chr(i))[1:-1] for i in range(32)}


def _json_escape(text: pa.Array) -> pa.Array:
    """Strings escaped for a JSON string literal (quotes, backslashes, control characters)."""
    special = pc.match_substring_regex(text, '["\\\\\\x00-\\x1f]')
    if not pc.any(special).as_py():
        return text  # most columns: nothing to escape
    text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
    # A few values hold line breaks or tabs: escape the control characters found, not all 32.
    found = set("".join(pc.filter(text, special).to_pylist())) & _CONTROL.keys()
    for char in found:
        text = pc.replace_substring(text, char, _CONTROL[char])
    return text
