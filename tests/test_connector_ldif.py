"""Stories of the ldif connector."""

from __future__ import annotations

import base64

import pytest
import yaml

from mappings import TEMPLATES_DIR, MappingSpec, apply_mapping
from migrate.errors import InputError
from tests.read_source import read_all, read_chunks

PEOPLE = {"connector": "ldif", "path": "ldif_people.ldif"}


def test_ldif_base64_and_folded_values_are_decoded():
    rows, _ = read_all(PEOPLE)
    juergen = rows.iloc[0]
    assert juergen["dn"] == "cn=Jürgen Müller,ou=People,dc=example,dc=org"
    assert (juergen["cn"], juergen["sn"], juergen["givenName"]) == ("Jürgen Müller", "Müller", "Jürgen")
    assert juergen["description"].endswith("because RFC 2849 allows lines to be continued with a leading space.")
    assert rows.iloc[1]["cn;lang-ja"] == "山田 明子"


def test_ldif_multi_valued_attributes_become_numbered_columns():
    rows, _ = read_all(PEOPLE)
    juergen = rows.iloc[0]
    assert [juergen["mail"], juergen["mail.2"]] == ["j.mueller@example.org", "juergen@example.de"]
    assert [juergen["telephoneNumber"], juergen["telephoneNumber.2"]] == ["+49 30 1234567", "+49 170 7654321"]


def test_ldif_attribute_names_in_any_case_land_in_the_schema_spelling():
    rows, _ = read_all(PEOPLE)
    akiko = rows.iloc[1]
    assert (akiko["cn"], akiko["givenName"], akiko["mail"]) == ("Akiko Yamada", "Akiko", "akiko@example.jp")
    assert "GIVENNAME" not in rows.columns


def test_ldif_photos_and_password_hashes_are_left_out_and_binary_ids_kept_as_hex():
    rows, _ = read_all(PEOPLE)
    assert "jpegPhoto" not in rows.columns and "userPassword" not in rows.columns
    assert rows.iloc[0]["objectGUID"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_ldif_change_record_is_rejected_not_crashed_on():
    rows, rejects = read_all(PEOPLE)
    changes = rejects[rejects["reason"] == "ldif_change_record"]
    assert changes["source_ref"].tolist() == ["line 34", "line 44"]
    assert changes["detail"].str.contains("changetype: modify").iloc[0]
    assert "replace: mail" in changes["value"].iloc[0]
    assert rows["_source_ref"].tolist() == ["line 5", "line 25", "line 50"]  # the entries around them


def test_ldif_bad_base64_value_is_rejected_with_its_line():
    _, rejects = read_all(PEOPLE)
    bad = rejects[rejects["reason"] == "ldif_syntax_error"]
    assert bad["source_ref"].tolist() == ["line 40"]
    assert "not*valid*base64!" in bad["value"].iloc[0]


def test_ldif_person_columns_are_there_even_when_no_entry_has_them():
    rows, _ = read_all(PEOPLE)
    assert {"mobile", "homePhone", "street", "st", "employeeNumber"} <= set(rows.columns)
    assert rows["mobile"].isna().all()


def test_ldif_utf16_export_from_ldifde_is_read(tmp_path):
    text = "dn: CN=Sören Gräf,OU=Staff,DC=corp,DC=example\r\ncn: Sören Gräf\r\nsn: Gräf\r\n\r\n"
    (tmp_path / "ad.ldf").write_bytes(text.encode("utf-16"))
    rows, _ = read_all({"connector": "ldif", "path": "ad.ldf"}, base_dir=tmp_path)
    assert rows["sn"].tolist() == ["Gräf"]


def test_file_that_is_not_ldif_is_refused_before_reading_it(tmp_path):
    (tmp_path / "people.ldif").write_text("name,mail\nAnn,ann@example.org\n")
    with pytest.raises(InputError, match=r"people.ldif: not LDIF \(line 1"):
        read_all({"connector": "ldif", "path": "people.ldif"}, base_dir=tmp_path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"gone\.ldif: no such file"):
        read_all({"connector": "ldif", "path": "gone.ldif"}, base_dir=tmp_path)


def test_ldif_streams_in_chunks_of_the_asked_size(tmp_path):
    entries = []
    for i in range(2_500):
        cn = base64.b64encode(f"Zoë {i}".encode()).decode()
        entries.append(f"dn: uid=u{i},dc=example,dc=org\ncn:: {cn}\nmail: u{i}@example.org\n")
    (tmp_path / "big.ldif").write_text("version: 1\n\n" + "\n".join(entries))
    chunks = read_chunks({"connector": "ldif", "path": "big.ldif"}, chunk_size=1_000, base_dir=tmp_path)
    assert [c.count for c in chunks] == [1_000, 1_000, 500]
    assert chunks[-1].rows["cn"].iloc[-1] == "Zoë 2499"


def test_inetorgperson_template_maps_the_entries():
    spec = MappingSpec.model_validate(yaml.safe_load((TEMPLATES_DIR / "ldif_inetorgperson.yaml").read_text()))
    rows, _ = read_all(PEOPLE)
    records = apply_mapping(rows, spec, "ldap")
    assert records["source_id"].iloc[1] == "uid=akiko,ou=People,dc=example,dc=org"
    assert records["emails"].iloc[0] == ["j.mueller@example.org", "juergen@example.de"]
    assert records["phones"].iloc[0] == ["+49 30 1234567", "+49 170 7654321"]
    assert records["city"].tolist() == ["Berlin", None, None]
