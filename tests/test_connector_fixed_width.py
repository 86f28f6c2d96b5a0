"""Stories of the fixed_width connector: mainframe extracts and flat text files."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors._copybook import parse_copybook
from connectors.fixed_width import packed, zoned
from migrate.errors import InputError
from tests.read_source import read_all, read_chunks

CUSTMAST = {"connector": "fixed_width", "path": "fixed_width_custmast.dat",
            "layout": "fixed_width_custmast.cpy", "encoding": "cp037"}
ACCOUNTS = {"connector": "fixed_width", "path": "fixed_width_accounts.txt",
            "layout": "fixed_width_accounts.yaml", "encoding": "cp1252"}


def test_ebcdic_comp3_record_decodes_amount():
    rows, _ = read_all(CUSTMAST)
    first = rows.iloc[0]
    assert (first["CUST-ID"], first["LAST-NAME"], first["FIRST-NAME"]) == (1001, "MÜLLER", "JÜRGEN")
    assert first["BALANCE"] == Decimal("1234.56")
    assert rows.iloc[1]["BALANCE"] == Decimal("-42.10")  # D sign nibble
    assert rows.iloc[1]["LAST-PAYMENT"] == Decimal("-19.99")  # zoned, sign overpunched
    assert rows.iloc[1]["ORDER-COUNT"] == -3  # COMP, big-endian two's complement


def test_copybook_occurs_and_repeated_names_become_distinct_columns():
    rows, _ = read_all(CUSTMAST)
    assert rows.iloc[0][["PHONE-NUMBER.1", "PHONE-NUMBER.2"]].tolist() == ["030 1234567", "030 7654321"]
    assert rows.iloc[0][["HOME-ADDR.CITY", "WORK-ADDR.CITY"]].tolist() == ["BERLIN", "POTSDAM"]
    assert "FILLER" not in rows.columns and "BIRTH-YYYY" not in rows.columns  # REDEFINES is skipped


def test_unset_packed_field_of_low_values_is_empty():
    rows, _ = read_all(CUSTMAST)
    assert rows.set_index("CUST-ID").loc[1004, "CREDIT-LIMIT"] is None


def test_corrupt_packed_decimal_is_rejected_naming_the_field():
    _, rejects = read_all(CUSTMAST)
    bad = rejects[rejects["reason"] == "bad_packed_decimal"].iloc[0]
    assert bad["source_ref"] == "offset 250"
    assert bad["value"] == "00 12 34 5f 7c"
    assert bad["detail"].startswith("field BALANCE (byte 52)")


def test_wrong_length_record_is_rejected_with_offset():
    _, rejects = read_all(CUSTMAST)
    short = rejects[rejects["reason"] == "wrong_record_length"].iloc[0]
    assert short["source_ref"] == "offset 500"
    assert short["value"] == "00001005PARTIAL RECORD"
    assert short["detail"] == "expected 125 bytes, found 22"


def test_ebcdic_file_read_as_an_ascii_code_page_is_refused():
    with pytest.raises(InputError, match=r"custmast.dat: record 1 does not read as cp1252: .*0x40.*EBCDIC"):
        read_all({**CUSTMAST, "encoding": "cp1252"})


def test_text_file_with_crlf_lines_and_yaml_layout_is_read():
    rows, rejects = read_all(ACCOUNTS)
    assert rows["NAME"].tolist() == ["Müller, Jürgen", "O'Brien, Siobhán", "Renée Dubois"]  # cp1252
    assert rows["ACCOUNT_NO"].tolist() == ["00012345", "00012346", "00012347"]  # text keeps its zeros
    assert rows["BALANCE"].tolist() == [Decimal("1234.55"), Decimal("-42.10"), Decimal("120.00")]
    assert rows["OPENED"].tolist() == ["20010315", "19991231", "20200101"]  # start: 51 skips a gap
    assert rejects[["source_ref", "reason"]].values.tolist() == [["line 3", "wrong_record_length"]]


def test_ebcdic_code_page_from_the_ebcdic_package_is_usable(tmp_path):
    (tmp_path / "de.yaml").write_text("fields: [{name: NAME, length: 12}]\n")
    (tmp_path / "de.dat").write_bytes("Gräf € ÄÖÜ  ".encode("cp1141") * 2)
    rows, _ = read_all({"connector": "fixed_width", "path": "de.dat", "layout": "de.yaml", "encoding": "cp1141"},
                       base_dir=tmp_path)
    assert rows["NAME"].tolist() == ["Gräf € ÄÖÜ"] * 2


def test_packed_and_zoned_decimals_decode_every_sign():
    assert packed(bytes.fromhex("12345C"), 2) == Decimal("123.45")
    assert packed(bytes.fromhex("12345D")) == -12345
    assert packed(bytes.fromhex("12345F")) == 12345  # unsigned
    with pytest.raises(ValueError):
        packed(bytes.fromhex("1A345C"))
    assert zoned("1234{") == 12340 and zoned("1234}") == -12340
    assert zoned("+0042") == 42 and zoned("0042-") == -42
    with pytest.raises(ValueError):
        zoned("12 34")


def test_copybook_sizes_fields_by_usage():
    layout = parse_copybook("""
       01  REC.
           05  A   PIC S9(5)     COMP-3.
           05  B   PIC S9(9)     COMP.
           05  C   PIC S9(3)     SIGN IS LEADING SEPARATE.
           05  D   PIC ZZ,ZZ9.99.
           05  GRP COMP-3.
               10  E  PIC 9(4).
    """)
    assert [(f.name, f.offset, f.length, f.type) for f in layout.fields] == [
        ("A", 0, 3, "packed"), ("B", 3, 4, "binary"), ("C", 7, 4, "zoned"), ("D", 11, 9, "text"),
        ("E", 20, 3, "packed")]
    assert layout.record_length == 23


@pytest.mark.parametrize("book, problem", [
    ("01 R.\n  05 A PIC 9(3) COMP-1.", "floating point"),
    ("01 R.\n  05 N PIC 9.\n  05 A OCCURS 1 TO 5 TIMES DEPENDING ON N PIC X.", "OCCURS DEPENDING ON"),
    ("01 R.\n  05 A PIC X(3)", "no closing period"),
])
def test_copybook_it_cannot_lay_out_is_refused_with_the_reason(tmp_path, book, problem):
    (tmp_path / "rec.cpy").write_text(book)
    (tmp_path / "rec.dat").write_bytes(b"")
    with pytest.raises(InputError, match=rf"rec.cpy: .*{problem}"):
        read_all({"connector": "fixed_width", "path": "rec.dat", "layout": "rec.cpy"}, base_dir=tmp_path)


def test_yaml_layout_mistake_names_the_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("fields:\n  - {name: A, length: 0}\n")
    (tmp_path / "rec.dat").write_bytes(b"")
    with pytest.raises(InputError, match=r"bad.yaml: fields.0.length"):
        read_all({"connector": "fixed_width", "path": "rec.dat", "layout": "bad.yaml"}, base_dir=tmp_path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"CUSTMAST\.DAT: no such file"):
        read_all({**CUSTMAST, "path": str(tmp_path / "CUSTMAST.DAT")})


def test_fixed_width_streams_in_chunks_of_the_asked_size(tmp_path):
    (tmp_path / "big.cpy").write_text("01 REC.\n  05 ID PIC 9(6).\n  05 AMT PIC S9(5)V99 COMP-3.\n")
    records = b"".join(f"{i:06d}".encode("cp037") + bytes.fromhex(f"{i:07d}" + "c") for i in range(2_500))
    (tmp_path / "big.dat").write_bytes(records)
    spec = {"connector": "fixed_width", "path": "big.dat", "layout": "big.cpy", "encoding": "cp037"}
    chunks = read_chunks(spec, chunk_size=1_000, base_dir=tmp_path)
    assert [c.count for c in chunks] == [1_000, 1_000, 500]
    assert chunks[-1].rows["AMT"].iloc[-1] == Decimal("24.99")
