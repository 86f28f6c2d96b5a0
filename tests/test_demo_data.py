"""The bundled demo migration: realistic, seeded data with known duplicates and bad rows."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from datetime import datetime
from pathlib import Path

import phonenumbers
import pytest
import yaml
from email_validator import EmailNotValidError, validate_email

from mappings import mapping_path
from migrate.demo import BAD_ROW_KINDS, OUTLOOK_COLUMNS, DemoFiles, write_demo

# Outlook's own column order (the subset the demo writes must keep it).
OUTLOOK_ORDER = [
    "Title", "First Name", "Middle Name", "Last Name", "Suffix", "Company", "Job Title",
    "Business Street", "Business City", "Business State", "Business Postal Code",
    "Business Country/Region", "Home Street", "Home City", "Home State", "Home Postal Code",
    "Home Country/Region", "Business Phone", "Home Phone", "Mobile Phone", "E-mail Address",
    "E-mail 2 Address", "E-mail 3 Address", "Birthday", "Notes", "Categories",
]
PHONE_COLUMNS = ["Business Phone", "Home Phone", "Mobile Phone"]
EMAIL_COLUMNS = ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return write_demo(tmp_path_factory.mktemp("demo"))


def contacts_rows(files: DemoFiles) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of contacts.csv, as any CSV reader sees them."""
    with files.contacts_csv.open(encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def contacts_records(files: DemoFiles) -> list[dict[str, str]]:
    """The well-formed contacts rows, each with the pipeline's id for it (``line{physical line}``) as ``_line``."""
    header, rows = contacts_rows(files)
    return [dict(zip(header, row, strict=True), _line=f"line{i}") for i, row in enumerate(rows, start=2)
            if len(row) == len(header)]


def customers(files: DemoFiles) -> list[dict[str, object]]:
    with sqlite3.connect(files.erp_db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM customers ORDER BY customer_id")]


def truth(files: DemoFiles) -> dict[tuple[str, str], str]:
    with files.truth_csv.open(encoding="utf-8", newline="") as f:
        return {(r["source"], r["source_id"]): r["person_id"] for r in csv.DictReader(f)}


def is_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def e164(value: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_date(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def identities(files: DemoFiles) -> list[tuple[str, set[str]]]:
    """(person_id, normalised e-mails and E.164 phones) for every well-formed source row."""
    known = truth(files)
    out = []
    for r in contacts_records(files):
        keys = {r[c].strip().lower() for c in EMAIL_COLUMNS if r[c] and is_email(r[c])}
        keys |= {p for c in PHONE_COLUMNS if r[c] and (p := e164(r[c], "GB"))}
        out.append((known["contacts", r["_line"]], keys))
    for r in customers(files):
        keys = {str(r["email"]).strip().lower()} if r["email"] and is_email(str(r["email"])) else set()
        keys |= {p for c in ("phone", "mobile") if r[c] and (p := e164(str(r[c]), None))}
        out.append((known["erp", str(r["customer_id"])], keys))
    return out


def test_demo_folder_is_a_complete_project(demo: DemoFiles):
    project = yaml.safe_load(demo.project.read_text(encoding="utf-8"))
    assert list(project) == ["workspace", "sources", "rules", "target", "phases"]
    assert project["sources"]["contacts"]["mapping"] == "outlook_csv"
    assert (demo.root / project["sources"]["contacts"]["path"]) == demo.contacts_csv
    assert project["sources"]["erp"]["url"] == "sqlite:///data/erp.db"
    assert (demo.root / project["sources"]["erp"]["mapping"]) == demo.erp_mapping
    assert "#" in demo.project.read_text(encoding="utf-8"), "a new user gets comments"

    header, _ = contacts_rows(demo)
    template = yaml.safe_load(mapping_path("outlook_csv", demo.root).read_text(encoding="utf-8"))
    for field, columns in template["fields"].items():
        for column in columns if isinstance(columns, list) else [columns]:
            assert column in header, f"template field {field} reads {column!r}, not in the export"
    erp = yaml.safe_load(demo.erp_mapping.read_text(encoding="utf-8"))
    table = set(customers(demo)[0])
    for columns in erp["fields"].values():
        assert set(columns if isinstance(columns, list) else [columns]) <= table
    assert table - {c for v in erp["fields"].values() for c in (v if isinstance(v, list) else [v])} \
        == {"customer_id", "updated_at", "business_unit"}


def test_contacts_csv_is_an_outlook_export_with_bom_and_crlf(demo: DemoFiles):
    raw = demo.contacts_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\n") == raw.count(b"\r\n") == demo.rows["contacts"] + 1
    header, rows = contacts_rows(demo)
    assert header == list(OUTLOOK_COLUMNS)
    assert header == [c for c in OUTLOOK_ORDER if c in header]
    assert any("ü" in r[3] or "ë" in r[1] for r in rows), "non-ASCII names"
    assert any("," in r[5] for r in rows if len(r) == len(header)), "quoted commas in company names"


def test_truth_covers_every_source_row(demo: DemoFiles):
    known = truth(demo)
    _, rows = contacts_rows(demo)
    contacts_ids = {sid for source, sid in known if source == "contacts"}
    erp_ids = {sid for source, sid in known if source == "erp"}
    assert contacts_ids == {f"line{i}" for i in range(2, len(rows) + 2)}
    assert erp_ids == {str(r["customer_id"]) for r in customers(demo)}
    assert len(known) == sum(demo.rows.values()) == 2000
    assert len(set(known.values())) == demo.persons


def test_demo_data_has_duplicates_across_and_within_sources(demo: DemoFiles):
    known = truth(demo)
    sources_of: dict[str, set[str]] = {}
    for (source, _), person in known.items():
        sources_of.setdefault(person, set()).add(source)
    in_both = sum(len(s) == 2 for s in sources_of.values()) / len(sources_of)
    assert 0.22 <= in_both <= 0.28
    contacts_per_person = Counter(p for (source, _), p in known.items() if source == "contacts")
    second_copies = sum(n - 1 for n in contacts_per_person.values())
    assert 0.04 <= second_copies / demo.rows["contacts"] <= 0.06


def test_copies_of_a_person_differ_in_writing_but_share_an_email_or_phone(demo: DemoFiles):
    rows_of: dict[str, list[set[str]]] = {}
    for person, keys in identities(demo):
        rows_of.setdefault(person, []).append(keys)
    duplicated = [copies for copies in rows_of.values() if len(copies) > 1]
    linked = sum(bool(set.intersection(*copies)) for copies in duplicated)
    assert linked / len(duplicated) > 0.8

    records = {r["_line"]: r for r in contacts_records(demo)}
    by_person: dict[str, list[dict[str, str]]] = {}
    for (source, sid), person in truth(demo).items():
        if source == "contacts" and sid in records:
            by_person.setdefault(person, []).append(records[sid])
    pairs = [copies[:2] for copies in by_person.values() if len(copies) > 1]
    reformatted = [a["Mobile Phone"] for a, b in pairs
                   if a["Mobile Phone"] and b["Mobile Phone"] and a["Mobile Phone"] != b["Mobile Phone"]]
    assert reformatted, "the same mobile written in another format"
    assert any(a["First Name"] != b["First Name"] for a, b in pairs)


def test_no_email_or_phone_is_shared_by_two_persons(tmp_path: Path):
    files = write_demo(tmp_path, size=6_000, seed=3)
    owners: dict[str, set[str]] = {}
    for person, keys in identities(files):
        for key in keys:
            owners.setdefault(key, set()).add(person)
    shared = {key: people for key, people in owners.items() if len(people) > 1}
    assert not shared, list(shared.items())[:5]


def test_demo_data_is_seeded_and_reproducible(tmp_path: Path):
    first = write_demo(tmp_path / "a", size=500, seed=11)
    again = write_demo(tmp_path / "b", size=500, seed=11)
    other = write_demo(tmp_path / "c", size=500, seed=12)
    assert first.contacts_csv.read_bytes() == again.contacts_csv.read_bytes()
    assert first.truth_csv.read_bytes() == again.truth_csv.read_bytes()

    def dump(files: DemoFiles) -> list[tuple]:
        with sqlite3.connect(files.erp_db) as con:
            return [*con.execute("SELECT * FROM customers ORDER BY 1"), *con.execute("SELECT * FROM orders ORDER BY 1")]

    assert dump(first) == dump(again)
    assert first.contacts_csv.read_bytes() != other.contacts_csv.read_bytes()
    assert dump(first) != dump(other)


def test_demo_data_scales_to_requested_size(tmp_path: Path):
    files = write_demo(tmp_path, size=20_000)
    _, rows = contacts_rows(files)
    assert abs(len(rows) + len(customers(files)) - 20_000) <= 200
    assert abs(len(rows) / 20_000 - 0.55) <= 0.01
    assert files.rows == {"contacts": len(rows), "erp": 20_000 - len(rows)}
    with sqlite3.connect(files.erp_db) as con:
        per_customer = Counter(c for (c,) in con.execute(
            "SELECT customer_id FROM orders WHERE customer_id IN (SELECT customer_id FROM customers)"))
        (orders,) = con.execute("SELECT count(*) FROM orders").fetchone()
    assert max(per_customer.values()) == 4
    assert orders == files.orders


def test_demo_data_contains_each_kind_of_bad_row(demo: DemoFiles):
    header, rows = contacts_rows(demo)
    good = contacts_records(demo)
    erp = customers(demo)
    identity = ["First Name", "Last Name", "Company", *EMAIL_COLUMNS, *PHONE_COLUMNS]

    found = {
        "wrong_column_count": sum(len(r) != len(header) for r in rows),
        "invalid_email": sum(bool(r[c]) and not is_email(r[c]) for r in good for c in EMAIL_COLUMNS)
        + sum(bool(r["email"]) and not is_email(str(r["email"])) for r in erp),
        "no_identity": sum(not any(r[c] for c in identity) and bool(r["Business City"]) for r in good)
        + sum(not any(r[c] for c in ("first_nm", "last_nm", "company_nm", "email", "phone", "mobile"))
              and bool(r["city"]) for r in erp),
        "impossible_birth_date": sum(bool(r["Birthday"]) and not is_date(r["Birthday"], "%d/%m/%Y") for r in good)
        + sum(bool(r["dob"]) and r["dob"] != "0000-00-00" and not is_date(str(r["dob"]), "%Y-%m-%d") for r in erp),
    }
    with sqlite3.connect(demo.erp_db) as con:
        (found["orphan_order"],) = con.execute(
            "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT customer_id FROM customers)").fetchone()

    assert found == demo.bad_rows
    assert set(found) == set(BAD_ROW_KINDS) and min(found.values()) >= 3
    source_row_kinds = sum(n for kind, n in found.items() if kind != "orphan_order")
    assert 0.025 <= source_row_kinds / sum(demo.rows.values()) <= 0.035


def test_every_good_phone_parses_in_the_region_its_source_declares(demo: DemoFiles):
    contacts_phones = [r[c] for r in contacts_records(demo) for c in PHONE_COLUMNS if r[c]]
    erp_phones = [str(r[c]) for r in customers(demo) for c in ("phone", "mobile") if r[c]]
    assert len(contacts_phones) > 500 and len(erp_phones) > 500
    assert [p for p in contacts_phones if e164(p, "GB") is None] == []
    # The ERP source sets no default_region, so its numbers carry their country code.
    assert [p for p in erp_phones if e164(p, None) is None] == []
    assert any(p.startswith("0") for p in contacts_phones) and any(p.startswith("+") for p in contacts_phones)


def test_erp_columns_hold_the_documented_values(demo: DemoFiles):
    erp = customers(demo)
    assert {r["mkt_opt_in"] for r in erp} == {"Y", "N", ""}
    assert {r["business_unit"] for r in erp} == {"UK", "DE", "FR", "US"}
    assert all(datetime.fromisoformat(str(r["updated_at"])) for r in erp)
    assert len({r["customer_id"] for r in erp}) == len(erp) == demo.rows["erp"]


@pytest.mark.parametrize("size", [10, 10_000_001])
def test_a_size_out_of_range_is_refused(tmp_path: Path, size: int):
    with pytest.raises(ValueError, match="size must be between"):
        write_demo(tmp_path, size=size)
