"""A small but complete migration project for tests: a contacts CSV and an ERP database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import yaml

CONTACTS_CSV = """\
Id,First,Last,Email,Phone,Country,Birthday,Company,Segment
c1,ann,LEE,Ann.Lee@Example.com,020 7946 0018,United Kingdom,02/03/1980,,gold
c2,Bob,Stone,bob@stone.io,+44 20 7946 0999,UK,,,silver
c3,Ann,Lee,ann.lee@example.com,,GB,02/03/1980,,
c4,Zoë,Øster,zoe@oster.dk,+45 32 12 34 56,Denmark,11/11/1990,,gold
c5,Carl,Bad,carl@@example,,GB,,,
c6,,,,,GB,,,
c7,Dan,Date,dan@date.org,,GB,31/02/1980,,
c8,Eve,Extra,eve@x.org,,GB,,,too,many
c2,Bob,Again,bob2@stone.io,,GB,,,
,,,,,,,Acme Ltd,
"""

CUSTOMERS = pd.DataFrame({
    "customer_id": [101, 102, 103, 104],
    "first_nm": ["Ann", "Robert", "Fay", "Gus"],
    "last_nm": ["Lee", "Stone", "Field", "Grey"],
    "email": ["ann.lee@example.com", "bob@stone.io", "fay@field.net", None],
    "phone": ["+442079460018", None, "0161 496 0000", "+1 212 555 0100"],
    "country": ["GB", "GB", "GB", "US"],
    "dob": ["1980-03-02", None, "1975-06-30", None],
    "updated_at": ["2024-05-01T10:00:00", "2023-01-01T00:00:00", "2024-01-01T00:00:00", "2022-02-02T00:00:00"],
})

ORDERS = pd.DataFrame({
    "order_id": [1, 2, 3, 4, 5],
    "customer_id": [101, 101, 102, 103, 999],
    "order_date": ["2024-01-05", "2024-02-05", "2023-03-01", "2024-04-04", "2024-05-05"],
    "amount": [120.5, 80.0, 15.25, 99.99, 10.0],
    "currency": ["GBP", "GBP", "GBP", "GBP", "EUR"],
    "status": ["paid", "paid", "open", "paid", "paid"],
})

CONTACTS_MAPPING = {
    "id": "Id",
    "fields": {"first_name": "First", "last_name": "Last", "emails": ["Email"], "phones": ["Phone"],
               "country": "Country", "birth_date": {"column": "Birthday", "format": "%d/%m/%Y"},
               "organization_name": "Company"},
}
ERP_MAPPING = {
    "id": "customer_id", "updated_at": "updated_at",
    "fields": {"first_name": "first_nm", "last_name": "last_nm", "emails": ["email"], "phones": ["phone"],
               "country": "country", "birth_date": "dob"},
}

#: What reconciliation must find for this project (contacts: 10 data lines).
EXPECTED_IN = {"contacts": 10, "erp": 4, "erp.orders": 5}


def make_project(root: Path, *, erp_url: str | None = None, target_url: str | None = None,
                 phases: list[dict] | None = None) -> Path:
    """Write the project into ``root``; the ERP tables go into ``erp_url`` (a SQLite file by default)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "mappings").mkdir(exist_ok=True)
    (root / "data" / "contacts.csv").write_text(CONTACTS_CSV, encoding="utf-8")
    erp_url = erp_url or "sqlite:///data/erp.db"
    engine = sa.create_engine(erp_url.replace("sqlite:///data/", f"sqlite:///{root}/data/"))
    with engine.begin() as conn:
        CUSTOMERS.to_sql("erp_customers", conn, index=False, if_exists="replace")
        ORDERS.to_sql("erp_orders", conn, index=False, if_exists="replace")
    engine.dispose()
    (root / "mappings" / "contacts.yaml").write_text(yaml.safe_dump(CONTACTS_MAPPING), encoding="utf-8")
    (root / "mappings" / "erp.yaml").write_text(yaml.safe_dump(ERP_MAPPING), encoding="utf-8")
    config = {
        "workspace": "sqlite:///.crm-migrate/workspace.db",
        "sources": {
            "contacts": {"connector": "csv", "path": "data/contacts.csv", "mapping": "mappings/contacts.yaml",
                         "default_region": "GB"},
            "erp": {"connector": "sql", "url": erp_url, "table": "erp_customers", "id_column": "customer_id",
                    "mapping": "mappings/erp.yaml",
                    "related": {"orders": {"table": "erp_orders", "id_column": "order_id", "parent_key": "customer_id",
                                           "fields": {"occurred_on": "order_date"}}}},
        },
        "rules": {"survive": {"default": [{"source_priority": ["erp", "contacts"]}, "most_recent"],
                              "email_opt_in": "most_restrictive"}},
        "target": {"url": target_url or "sqlite:///crm.db", "schema": "reference", "batch_size": 3},
        "phases": phases or [{"name": "all"}],
    }
    (root / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root
