"""Stories of the vcard connector."""

from __future__ import annotations

import pytest
import yaml

from mappings import TEMPLATES_DIR, MappingSpec, apply_mapping
from migrate.errors import InputError
from tests.read_source import read_all, read_chunks

CONTACTS = {"connector": "vcard", "path": "vcard_contacts.vcf"}


def test_vcard_21_quoted_printable_and_folded_lines_are_read():
    rows, _ = read_all(CONTACTS)
    juergen = rows.iloc[0]
    assert juergen["FN"] == "Dr. Jürgen Müller"  # QUOTED-PRINTABLE in CHARSET=UTF-8
    assert (juergen["N.family"], juergen["N.given"], juergen["N.prefix"]) == ("Müller", "Jürgen", "Dr.")
    # QUOTED-PRINTABLE in CHARSET=windows-1252, continued over a soft line break.
    assert (juergen["ADR.1.street"], juergen["ADR.1.country"]) == ("Hauptstraße 5", "Deutschland")
    assert juergen["NOTE"] == "Met at the trade fair\r\nPrefers e-mail"


def test_vcard_30_folded_line_and_non_latin_script_are_read():
    rows, _ = read_all(CONTACTS)
    akiko = rows.iloc[1]
    assert (akiko["FN"], akiko["N.family"], akiko["N.given"]) == ("山田 明子", "山田", "明子")
    assert akiko["EMAIL.1"] == "akiko.yamada@example.co.jp"  # folded after "example.co"
    assert akiko["ADR.1.street"] == "1-2-3 Chiyoda, Chiyoda-ku"


def test_vcard_several_tel_and_email_keep_their_type_with_the_preferred_first():
    rows, _ = read_all(CONTACTS)
    juergen, akiko, ann = rows.iloc[0], rows.iloc[1], rows.iloc[2]
    assert [juergen["TEL.1"], juergen["TEL.1.type"], juergen["TEL.2"], juergen["TEL.2.type"]] == [
        "+49 170 7654321", "cell", "+49 30 1234567", "work,voice"]  # 2.1 bare PREF
    assert [akiko["TEL.1"], akiko["TEL.1.type"]] == ["+81 3 1234 5678", "work,voice"]  # 3.0 type=pref
    # 4.0 ranks with PREF=1..100
    assert [ann["TEL.1"], ann["TEL.1.type"], ann["TEL.2.type"]] == ["+44-7700-900123", "cell", "voice,home"]
    assert [juergen["EMAIL.1"], juergen["EMAIL.2.type"]] == ["juergen@example.de", "internet,work"]


def test_vcard_birthdays_in_every_version_become_iso():
    rows, _ = read_all(CONTACTS)
    assert rows["BDAY"].tolist() == ["1980-02-29", "--04-15", "--04-15"]  # 19800229, Apple no-year, 4.0 --0415


def test_vcard_broken_and_unterminated_cards_are_rejected_and_the_rest_read():
    rows, rejects = read_all(CONTACTS)
    assert len(rows) == 3
    assert rejects[["source_ref", "reason"]].values.tolist() == [
        ["line 45", "vcard_syntax_error"], ["line 50", "vcard_unterminated"]]
    assert "THIS LINE HAS NO COLON" in rejects["value"].iloc[0]


def test_vcard_photo_is_left_out():
    rows, _ = read_all(CONTACTS)
    assert not any(c.startswith("PHOTO") for c in rows.columns)


def test_vcard_outlook_cp1252_file_is_read_with_its_encoding_and_refused_without():
    rows, _ = read_all({"connector": "vcard", "path": "vcard_outlook_cp1252.vcf", "encoding": "cp1252"})
    assert rows["FN"].tolist() == ["Sören Gräf"]
    with pytest.raises(InputError, match=r"vcard_outlook_cp1252.vcf: not utf-8 text; .*set encoding: cp1252"):
        read_all({"connector": "vcard", "path": "vcard_outlook_cp1252.vcf"})


def test_file_that_is_not_vcard_is_refused(tmp_path):
    (tmp_path / "contacts.vcf").write_text("First Name,Last Name\nAnn,Lee\n")
    with pytest.raises(InputError, match=r"contacts.vcf: not a vCard file"):
        read_all({"connector": "vcard", "path": "contacts.vcf"}, base_dir=tmp_path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"gone\.vcf: no such file"):
        read_all({"connector": "vcard", "path": "gone.vcf"}, base_dir=tmp_path)


def test_vcard_streams_in_chunks_of_the_asked_size(tmp_path):
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nN:{i};Person;;;\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n"
    (tmp_path / "big.vcf").write_text("".join(card.format(i=i) for i in range(2_500)), newline="")
    chunks = read_chunks({"connector": "vcard", "path": "big.vcf"}, chunk_size=1_000, base_dir=tmp_path)
    assert [c.count for c in chunks] == [1_000, 1_000, 500]
    assert chunks[-1].rows["EMAIL.1"].iloc[-1] == "p2499@example.org"


def test_vcard_template_maps_cards_of_every_version():
    spec = MappingSpec.model_validate(yaml.safe_load((TEMPLATES_DIR / "vcard.yaml").read_text()))
    rows, _ = read_all(CONTACTS)
    records = apply_mapping(rows, spec, "phone")
    assert records["last_name"].tolist() == ["Müller", "山田", "Lee"]
    assert records["emails"].iloc[0] == ["juergen@example.de", "j.mueller@beispiel.de"]
    assert records["phones"].iloc[2] == ["+44-7700-900123", "+44-20-7946-0018"]
    assert records["postcode"].tolist() == ["10115", "100-0001", None]
