"""Stories of the json and jsonl connectors."""

from __future__ import annotations

import json

import pytest

from migrate.errors import InputError
from tests.read_source import read_all, read_chunks

CONTACTS = {"connector": "json", "path": "json_contacts.json", "records": "results"}
LINES = {"connector": "jsonl", "path": "jsonl_contacts.jsonl"}


def test_json_nested_fields_are_flattened_to_dotted_paths():
    rows, _ = read_all(CONTACTS)
    zoe = rows.iloc[0]
    assert zoe["name.first"] == "Zoë"  # through a UTF-8 BOM and CRLF line ends
    assert zoe["address.city"] == "Brno"
    assert [zoe["emails.0"], zoe["emails.1"]] == ["zoe@example.cz", "z.simkova@work.example"]
    assert zoe["phones.0.number"] == "+420 601 123 456"
    assert rows.iloc[1]["address.city"] == "上海"
    assert list(rows["_source_ref"]) == ["record 1", "record 2", "record 4"]


def test_json_item_that_is_not_an_object_is_rejected_with_its_position():
    _, rejects = read_all(CONTACTS)
    assert rejects.to_dict("records") == [{
        "source_ref": "record 3", "reason": "not_an_object", "value": '"not a record"',
        "detail": "expected an object, found str"}]


def test_json_without_records_path_names_the_lists_it_holds():
    with pytest.raises(InputError, match=r"json_contacts.json: .*set records: .*lists here: results"):
        read_all({"connector": "json", "path": "json_contacts.json"})


def test_json_truncated_document_is_a_file_error_naming_the_file(tmp_path):
    (tmp_path / "cut.json").write_text('[{"id": 1}, {"id": 2}, {"id": ')
    with pytest.raises(InputError, match=r"cut.json: not valid JSON after record 2"):
        read_all({"connector": "json", "path": "cut.json"}, base_dir=tmp_path)


def test_json_utf16_export_from_powershell_is_read(tmp_path):
    (tmp_path / "ps.json").write_bytes(json.dumps([{"name": "Sören"}], ensure_ascii=False).encode("utf-16"))
    rows, _ = read_all({"connector": "json", "path": "ps.json"}, base_dir=tmp_path)
    assert rows["name"].tolist() == ["Sören"]


def test_jsonl_bad_lines_are_rejected_and_reading_goes_on():
    rows, rejects = read_all(LINES)
    assert rows["id"].tolist() == [1, 2, 5]
    assert rows["_source_ref"].tolist() == ["line 1", "line 3", "line 7"]
    assert rows.loc[1, "emails.1"] == "z@work.example"
    assert rejects[["source_ref", "reason"]].values.tolist() == [
        ["line 4", "bad_json"], ["line 5", "not_an_object"], ["line 6", "bad_encoding"]]


def test_jsonl_whose_first_line_is_not_json_is_refused(tmp_path):
    (tmp_path / "contacts.jsonl").write_text("id,name\n1,Ann\n")
    with pytest.raises(InputError, match=r"contacts.jsonl: not JSON Lines \(line 1"):
        read_all({"connector": "jsonl", "path": "contacts.jsonl"}, base_dir=tmp_path)


@pytest.mark.parametrize("kind", ["json", "jsonl"])
def test_missing_file_names_the_file(kind, tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.json: no such file"):
        read_all({"connector": kind, "path": "nowhere.json"}, base_dir=tmp_path)


def test_json_and_jsonl_stream_in_chunks_of_the_asked_size(tmp_path):
    records = [{"id": i, "address": {"city": f"City {i}"}} for i in range(2_500)]
    (tmp_path / "big.json").write_text(json.dumps({"data": {"people": records}}))
    (tmp_path / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for spec in ({"connector": "json", "path": "big.json", "records": "data.people"},
                 {"connector": "jsonl", "path": "big.jsonl"}):
        chunks = read_chunks(spec, chunk_size=1_000, base_dir=tmp_path)
        assert [c.count for c in chunks] == [1_000, 1_000, 500]
        assert chunks[-1].rows["address.city"].iloc[-1] == "City 2499"
