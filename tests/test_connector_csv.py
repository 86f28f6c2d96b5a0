"""CSV exports: every row with its line number, bad lines quarantined, big files read fast."""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.csv as csv_connector
from connectors import open_source
from connectors.base import SOURCE_REF
from migrate.errors import InputError
from tests.read_source import read_all, read_chunks


def write(tmp_path: Path, data: bytes, name: str = "contacts.csv") -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def spec(path: Path, **options: str) -> dict:
    return {"connector": "csv", "path": str(path), **options}


def line_by_line(path: Path, **options: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The csv module's reading of the whole file: the reference the fast reader must match."""
    source = open_source("test", spec(path, **options))
    rows, rejects = [], []
    for record in source.records():
        if hasattr(record, "values"):
            rows.append({**record.values, SOURCE_REF: record.ref})
        else:
            rejects.append([record.ref, record.reason, record.value, record.detail])
    header = source.columns()
    frame = pd.DataFrame(rows, columns=[*header, SOURCE_REF], dtype="object")
    return frame, pd.DataFrame(rejects, columns=["source_ref", "reason", "value", "detail"], dtype="object")


def test_quoted_line_breaks_keep_the_line_numbers_of_the_rows_after_them(tmp_path):
    path = write(tmp_path, b'id,street,city\n1,"1 High St\nFlat 2",Leeds\n2,"3 Mill Rd\r\n\r\nBack door",York\n'
                           b'3,4 Elm Cl,Bath\n')
    rows, rejects = read_all(spec(path))
    assert rows[SOURCE_REF].tolist() == ["line 2", "line 4", "line 7"]
    assert rows["street"].tolist() == ["1 High St\nFlat 2", "3 Mill Rd\r\n\r\nBack door", "4 Elm Cl"]
    assert rejects.empty


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write(tmp_path, b"id,name\r\n\r\n1,Ann\r\n\r\n\r\n2,Bob\r\n")
    rows, _ = read_all(spec(path))
    assert rows[SOURCE_REF].tolist() == ["line 3", "line 6"]


def test_bad_line_deep_in_a_big_file_is_quarantined_with_its_line_and_the_rest_is_read_in_blocks(tmp_path,
                                                                                               monkeypatch):
    lines = [f"{i},Name{i},name{i}@example.org" for i in range(1, 30_001)]
    lines[12_344] = "12345,Too,many,fields"          # line 12,346 of the file (the header is line 1)
    lines[20_000] = "20001,J\xe9r\xf4me,jb@example.org"   # cp1252 bytes in a UTF-8 file: line 20,002
    path = write(tmp_path, ("id,name,email\n" + "\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
                 .replace("J\xe9r\xf4me".encode(), b"J\xe9r\xf4me"))
    read_by_csv_module = []
    real = csv_connector._records

    def spy(*args, **kwargs):
        for record in real(*args, **kwargs):
            read_by_csv_module.append(record.ref)
            yield record
    monkeypatch.setattr(csv_connector, "_records", spy)
    chunks = read_chunks(spec(path), chunk_size=10_000)
    assert [c.count for c in chunks] == [10_000, 10_000, 10_000]
    rows = pd.concat([c.rows for c in chunks], ignore_index=True)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    assert rejects[["source_ref", "reason"]].values.tolist() == [["line 12346", "wrong_column_count"],
                                                                 ["line 20002", "bad_encoding"]]
    assert rejects["value"].tolist() == ["12345,Too,many,fields", "20001,J\ufffdr\ufffdme,jb@example.org"]
    assert len(rows) == 29_998 and rows[SOURCE_REF].is_unique
    assert rows.loc[rows["id"] == "12346", SOURCE_REF].item() == "line 12347"
    assert len(read_by_csv_module) <= 2 * 64  # only the stretches around the two bad lines


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cells=st.lists(st.lists(st.sampled_from(["a", "Zoë", "", " ", ",", '"', '""', '"x,y"', '"p\nq"', "\r\n", "\n",
                                             "\r", "\xe9", '5" tv']), min_size=1, max_size=4),
                   min_size=1, max_size=40),
    chunk_size=st.integers(1, 9),
    line_end=st.sampled_from(["\n", "\r\n"]),
    last_line_end=st.booleans(),
)
def test_block_reading_matches_the_line_by_line_reading(tmp_path, monkeypatch, cells, chunk_size, line_end,
                                                       last_line_end):
    text = "h1,h2,h3" + line_end + line_end.join(",".join(row) for row in cells) + (line_end if last_line_end else "")
    path = write(tmp_path, text.encode("utf-8").replace("\xe9".encode(), b"\xe9"))
    monkeypatch.setattr(csv_connector, "_SLOW_LINES", 2)  # halve refused blocks on tiny files too
    chunks = read_chunks(spec(path), chunk_size=chunk_size)
    assert all(0 < c.count <= chunk_size for c in chunks)
    want_rows, want_rejects = line_by_line(path)
    if not chunks:
        assert want_rows.empty and want_rejects.empty
        return
    rows = pd.concat([c.rows for c in chunks], ignore_index=True)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(rows, want_rows, check_index_type=False)
    pd.testing.assert_frame_equal(rejects.sort_values("source_ref", key=lambda s: s.str[5:].astype(int),
                                                      ignore_index=True),
                                  want_rejects, check_index_type=False)


def test_utf8_bom_and_semicolons_are_detected(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + "Nom;Prénom\r\nDupont;Zoë\r\n".encode())
    rows, _ = read_all(spec(path))
    assert rows.to_dict("records") == [{"Nom": "Dupont", "Prénom": "Zoë", SOURCE_REF: "line 2"}]


def test_windows_1252_export_is_detected_and_read(tmp_path):
    path = write(tmp_path, "name,city\nJérôme,Besançon\nSøren,Århus\n".encode("cp1252"))
    rows, rejects = read_all(spec(path))
    assert rows["name"].tolist() == ["Jérôme", "Søren"] and rejects.empty


def test_utf16_export_is_read_line_by_line(tmp_path):
    path = write(tmp_path, "name\tcity\r\nZoë\tLyon\r\nBad\tlen\textra\r\n".encode("utf-16"))
    rows, rejects = read_all(spec(path, delimiter="\t"))
    assert rows.to_dict("records") == [{"name": "Zoë", "city": "Lyon", SOURCE_REF: "line 2"}]
    assert rejects[["source_ref", "reason"]].values.tolist() == [["line 3", "wrong_column_count"]]


def test_declared_encoding_that_does_not_fit_names_the_likely_one(tmp_path):
    path = write(tmp_path, ("name\n" + "Jérôme\n" * 50).encode("cp1252"))
    with pytest.raises(InputError, match="not utf-8 text"):
        read_all(spec(path, encoding="utf-8"))


def test_empty_file_and_header_only_file(tmp_path):
    with pytest.raises(InputError, match="the file is empty"):
        read_all(spec(write(tmp_path, b"", "empty.csv")))
    rows = read_chunks(spec(write(tmp_path, b"a,b\n", "header.csv")))
    assert rows == []


def test_repeated_and_blank_headers_get_unique_names(tmp_path):
    path = write(tmp_path, b"Email,,Email\nx,y,z\n")
    rows, _ = read_all(spec(path))
    assert list(rows.columns) == ["Email", "column_2", "Email.1", SOURCE_REF]
