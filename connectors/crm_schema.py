"""The bundled reference CRM schema: what `schema: reference` creates in the target."""

from __future__ import annotations

import sqlalchemy as sa

EXTERNAL_ID = sa.String(64)

#: Reference columns the loader does not fill: the surrogate id, the CRM's own timestamp, and
#: the person-to-organisation link (golden records do not carry it yet).
NOT_LOADED = {"id", "updated_at", ("contacts", "account_id")}


def loaded_columns(table: sa.Table) -> list[str]:
    """The columns of a reference table the loader fills, and so checksums and reads back."""
    return [c.name for c in table.columns if c.name not in NOT_LOADED and (table.name, c.name) not in NOT_LOADED]


def reference_metadata() -> sa.MetaData:
    """Tables of the reference CRM: accounts, contacts, addresses, orders, invoices, activities.

    Every table has an integer ``id`` and a unique ``external_id`` (the golden id or the
    related record's key), which makes every load an idempotent upsert.
    """
    md = sa.MetaData()

    def table(name: str, *columns: sa.Column) -> sa.Table:
        return sa.Table(
            name, md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("external_id", EXTERNAL_ID, nullable=False, unique=True),
            *columns,
            sa.Column("updated_at", sa.String(32)),
        )

    party = (sa.Column("email", sa.String(320)), sa.Column("phone", sa.String(32)),
             sa.Column("other_emails", sa.Text), sa.Column("other_phones", sa.Text))
    place = (sa.Column("street", sa.String(255)), sa.Column("city", sa.String(128)),
             sa.Column("region", sa.String(128)), sa.Column("postcode", sa.String(32)),
             sa.Column("country", sa.String(2)))
    table("accounts", sa.Column("name", sa.String(255)), *party, *place)
    table("contacts",
          sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
          sa.Column("title", sa.String(32)), sa.Column("first_name", sa.String(128)),
          sa.Column("middle_name", sa.String(128)), sa.Column("last_name", sa.String(128)),
          sa.Column("suffix", sa.String(32)), sa.Column("company", sa.String(255)),
          *[sa.Column(c.name, c.type) for c in party], *[sa.Column(c.name, c.type) for c in place],
          sa.Column("birth_date", sa.String(10)),
          sa.Column("email_opt_in", sa.Boolean), sa.Column("do_not_contact", sa.Boolean))
    table("addresses",
          sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id")),
          sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
          *[sa.Column(c.name, c.type) for c in place])
    for name in ("orders", "invoices", "activities"):
        table(name,
              sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id")),
              sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
              sa.Column("occurred_on", sa.String(32)), sa.Column("amount", sa.Numeric(14, 2)),
              sa.Column("currency", sa.String(3)), sa.Column("status", sa.String(32)),
              sa.Column("data", sa.Text))
    return md
