"""A user with a new export gets a mapping proposed from its headers."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from cli import main
from mappings import MappingSpec
from mappings.suggest import suggest_mapping


def test_german_erp_headers_map_to_canonical_fields():
    found = {s.field: s.columns for s in suggest_mapping(
        ["Kundennummer", "Vorname", "Nachname", "E-Mail", "Telefon", "Handy", "PLZ", "Ort", "Land", "Bemerkung"])}
    assert found["source_id"] == ["Kundennummer"]
    assert found["first_name"] == ["Vorname"] and found["last_name"] == ["Nachname"]
    assert found["phones"] == ["Telefon", "Handy"]
    assert "Bemerkung" not in {c for cols in found.values() for c in cols}


def test_list_fields_keep_header_order_so_the_primary_comes_first():
    found = {s.field: s.columns for s in suggest_mapping(["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"])}
    assert found["emails"] == ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"]


def test_map_suggest_writes_a_mapping_that_validates(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("Customer ID,Given Name,Surname,Email,Mobile,Postal Code,Country\n1,A,B,a@b.c,1,2,GB\n")
    out = tmp_path / "mapping.yaml"
    result = CliRunner().invoke(main, ["map", "suggest", str(export), "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = MappingSpec.model_validate(yaml.safe_load(out.read_text()))
    assert spec.id == "Customer ID"
    assert spec.fields["last_name"].column == "Surname"
    assert "confidence" in out.read_text()


def test_map_suggest_on_a_missing_file_names_it():
    result = CliRunner().invoke(main, ["map", "suggest", "no/such/export.csv"])
    assert result.exit_code == 2
    assert "no/such/export.csv: file not found" in result.output
