"""The map stage: every raw row becomes one canonical record, nothing unmapped is lost."""

from __future__ import annotations

import datetime
import decimal
import json

import pandas as pd

from connectors.base import SOURCE_REF
from mappings import MappingSpec, apply_mapping
from mappings.apply import json_rows

SPEC = MappingSpec.model_validate({"id": "ID", "fields": {
    "last_name": "Surname", "emails": ["Email", "Email 2"], "phones": ["Phone"], "country": {"column": "Country",
                                                                                           "default": "GB"}}})


def raw_rows(**columns: list) -> pd.DataFrame:
    frame = pd.DataFrame(columns, dtype="object")
    frame[SOURCE_REF] = [f"line {i + 2}" for i in range(len(frame))]
    return frame


def test_text_rows_from_a_file_map_to_records_with_lists_and_extra():
    raw = raw_rows(ID=[" 7 ", "8"], Surname=["Lee", ""], Email=["a@x.org", " "], **{"Email 2": ["", "b@x.org"]},
                   Phone=["0161 496 0000", ""], Country=["", "FR"], Note=['says "hi"\nthen left', ""])
    rec = apply_mapping(raw, SPEC, "crm")
    assert rec["record_key"].tolist() == ["crm:7", "crm:8"]
    assert rec["last_name"].tolist() == ["Lee", ""]
    assert rec["emails"].tolist() == [["a@x.org"], ["b@x.org"]]
    assert rec["phones"].tolist() == [["0161 496 0000"], []]
    assert rec["country"].tolist() == ["", "FR"]
    assert [json.loads(x) for x in rec["extra"]] == [{"Note": 'says "hi"\nthen left'}, {}]


def test_database_rows_with_nulls_and_numbers_map_like_text():
    raw = raw_rows(ID=[7, 8], Surname=["Lee", None], Email=[None, "b@x.org"], **{"Email 2": [None, None]},
                   Phone=[None, 1614960000], Country=[None, "FR"], Balance=[decimal.Decimal("1.50"), None],
                   Opened=[datetime.date(2020, 1, 2), None])
    raw["ID"] = raw["ID"].astype("int64")
    rec = apply_mapping(raw, SPEC, "erp")
    assert rec["source_id"].tolist() == ["7", "8"]
    assert rec["last_name"].tolist() == ["Lee", None]
    assert rec["emails"].tolist() == [[], ["b@x.org"]]
    assert rec["phones"].tolist() == [[], ["1614960000"]]
    assert rec["country"].tolist() == ["GB", "FR"]  # the default fills the gap
    assert [json.loads(x) for x in rec["extra"]] == [{"Balance": 1.5, "Opened": 1577923200000}, {}]


def test_row_hash_is_the_fingerprint_earlier_runs_stored():
    """Change detection compares with hashes staged by earlier versions: the formula must not move."""
    raw = raw_rows(ID=[7, 8], Surname=["Lee", None], Email=["a@x.org", "b@x.org"], **{"Email 2": ["", None]},
                   Phone=["1", "2"], Country=["GB", None])
    raw["ID"] = raw["ID"].astype("int64")
    data = raw.drop(columns=SOURCE_REF)
    stored = pd.util.hash_pandas_object(data.astype(str), index=False).map("{:016x}".format).tolist()
    assert apply_mapping(raw, SPEC, "erp")["row_hash"].tolist() == stored


def test_json_rows_escape_what_json_needs_and_drop_empty_members():
    frame = pd.DataFrame({"a": ['q"\\', None, "tab\there\x01"], "b": ["", "x", "é"]}, dtype="object")
    text = json_rows(frame).tolist()
    assert [json.loads(t) for t in text] == [{"a": 'q"\\'}, {"b": "x"}, {"a": "tab\there\x01", "b": "é"}]
    assert json_rows(pd.DataFrame({"a": [None, None]}, dtype="object")).tolist() == ["{}", "{}"]
