"""Stories of the excel connector (.xlsx through openpyxl, .xls through xlrd)."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from migrate.errors import InputError
from tests.read_source import read_all, read_chunks

CONTACTS = {"connector": "excel", "path": "excel_contacts.xlsx", "sheet": "Contacts"}


def test_excel_header_row_found_below_title_rows():
    rows, _ = read_all(CONTACTS)
    assert list(rows.columns[:5]) == ["Customer ID", "First Name", "Last Name", "E-mail", "E-mail.2"]
    assert rows["Customer ID"].tolist() == [1001, 1002, 1003]
    assert rows["_source_ref"].tolist() == ["row 5", "row 6", "row 7"]  # the empty row 8 is skipped


def test_excel_sheet_is_chosen_by_name_or_position_and_a_wrong_one_named():
    by_name, _ = read_all(CONTACTS)
    by_position, _ = read_all({**CONTACTS, "sheet": 1})
    assert by_name.equals(by_position)
    with pytest.raises(InputError, match=r"excel_contacts.xlsx: no sheet 'Kontakte' \(sheets: Read me, Contacts\)"):
        read_all({**CONTACTS, "sheet": "Kontakte"})


def test_excel_first_sheet_without_a_table_points_to_the_other_sheets():
    with pytest.raises(InputError, match=r"no header row .* of sheet 'Read me'; set header_row, or sheet"):
        read_all({"connector": "excel", "path": "excel_contacts.xlsx"})


def test_excel_serial_dates_and_date_cells_become_iso():
    rows, _ = read_all(CONTACTS)
    assert rows["Birth Date"].tolist() == ["1980-02-29", "1980-02-29", None]  # a date cell, then serial 29280
    assert rows["Member Since"].tolist() == ["2019-05-01T14:30:00", "2019-01-01", None]


def test_excel_lost_leading_zero_is_reported():
    rows, rejects = read_all(CONTACTS)
    assert rejects[["source_ref", "reason", "value"]].values.tolist() == [
        ["row 9", "lost_leading_zero", "7700900125"],  # phone stored as a number
        ["row 10", "lost_leading_zero", "2139"],  # ZIP stored as a number
    ]
    assert "Excel dropped its leading zero" in rejects["detail"].iloc[0]
    # A zero-padded number format shows the zero, so nothing was lost.
    assert rows["ZIP"].tolist() == ["02134", "10115", "02134"]


def test_excel_header_row_can_be_given(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["Name", "Email"])  # looks like a header but is a data row of a headerless list
    wb.active.append(["Ann", "ann@example.com"])
    wb.save(tmp_path / "list.xlsx")
    rows, _ = read_all({"connector": "excel", "path": "list.xlsx", "header_row": 1}, base_dir=tmp_path)
    assert rows["Email"].tolist() == ["ann@example.com"]


def test_legacy_xls_is_read_with_dates_and_padded_postcodes():
    rows, rejects = read_all({"connector": "excel", "path": "excel_legacy.xls"})
    first = rows.iloc[0][["Kundennr", "Name", "PLZ", "Geburtsdatum"]].tolist()
    assert first == [501, "Jürgen Müller", "01067", "1980-02-29"]
    assert rejects[["source_ref", "reason", "value"]].values.tolist() == [["row 3", "lost_leading_zero", "3514567890"]]


def test_text_file_renamed_to_xlsx_is_refused_with_a_hint(tmp_path):
    (tmp_path / "contacts.xlsx").write_text("Name;Email\nAnn;ann@example.com\n")
    with pytest.raises(InputError, match=r"contacts.xlsx: not an Excel workbook .*use connector: csv"):
        read_all({"connector": "excel", "path": "contacts.xlsx"}, base_dir=tmp_path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"gone\.xlsx: no such file"):
        read_all({"connector": "excel", "path": "gone.xlsx"}, base_dir=tmp_path)


def test_excel_streams_in_chunks_of_the_asked_size(tmp_path):
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Data")
    ws.append(["Export of 2,500 customers"])
    ws.append(["Id", "Name", "Created"])
    for i in range(2_500):
        ws.append([i, f"Customer {i}", dt.date(2020, 1, 1) + dt.timedelta(days=i)])
    wb.save(tmp_path / "big.xlsx")
    chunks = read_chunks({"connector": "excel", "path": "big.xlsx"}, chunk_size=1_000, base_dir=tmp_path)
    assert [c.count for c in chunks] == [1_000, 1_000, 500]
    last = (dt.date(2020, 1, 1) + dt.timedelta(days=2_499)).isoformat()
    assert chunks[-1].rows.iloc[-1][["Id", "Created"]].tolist() == [2_499, last]
