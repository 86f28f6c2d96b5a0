"""A seeded, realistic demo migration: an Outlook contacts export, an ERP database, the truth.

:func:`write_demo` writes a complete migration folder (``migration.yaml``, an ERP mapping,
the data, and ``data/truth.csv``, which says which source rows are the same person) so a
new user can run every stage and matching accuracy can be measured against known answers.

Persons are drawn as small integer arrays (indices into name, street and city lists); the
strings are rendered and written chunk by chunk with vectorised numpy/pandas operations, so
a million rows take well under a minute and memory holds one chunk of strings at a time.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BAD_ROW_KINDS", "MAX_SIZE", "MIN_SIZE", "OUTLOOK_COLUMNS", "DemoFiles", "write_demo"]

#: Kinds of bad rows the demo plants; every kind is present at every allowed size.
BAD_ROW_KINDS: tuple[str, ...] = (
    "invalid_email", "no_identity", "impossible_birth_date", "wrong_column_count", "orphan_order",
)

#: Below this size some bad-row kinds could not all be planted.
MIN_SIZE = 100
#: Phone numbers are unique per person only up to 8 million persons (see ``_subscriber``).
MAX_SIZE = 10_000_000

_CHUNK_ROWS = 50_000
_CONTACTS_SHARE = 0.55
_WITHIN_CONTACTS_DUPLICATES = 0.05   # of contacts rows: a second copy of a contacts person
_IN_BOTH_SOURCES = 0.25              # of persons
# Bad rows per kind, as a share of all source rows (3 % in all).
_BAD_RATES = {"invalid_email": 0.010, "no_identity": 0.005,
              "impossible_birth_date": 0.010, "wrong_column_count": 0.005}
_ORPHAN_ORDER_RATE = 0.005           # of orders
_BAD_CODE = {kind: code for code, kind in enumerate(BAD_ROW_KINDS, start=1)}

#: The Outlook export columns the demo writes, in Outlook's order.
OUTLOOK_COLUMNS: tuple[str, ...] = (
    "Title", "First Name", "Middle Name", "Last Name", "Suffix", "Company", "Job Title",
    "Business Street", "Business City", "Business State", "Business Postal Code",
    "Business Country/Region", "Business Phone", "Home Phone", "Mobile Phone",
    "E-mail Address", "E-mail 2 Address", "E-mail 3 Address", "Birthday", "Notes", "Categories",
)

_MIGRATION_YAML = """\
# A crm-migrate project: everything one migration needs, paths relative to this folder.
# `crm-migrate run` here runs every stage; `crm-migrate status` shows what it did.

# Where every stage keeps its work (staged records, matches, golden records, the load
# ledger). A local SQLite file is enough for a demo; use postgresql://... for a team.
workspace: sqlite:///.crm-migrate/workspace.db

# The legacy systems to read. Each source names a connector and a mapping that says
# which of its columns feed which CRM field; unmapped columns are kept in `extra`.
sources:
  contacts:
    connector: csv
    path: data/contacts.csv
    mapping: outlook_csv          # a bundled template
    default_region: GB            # phone numbers without +country code are read as UK numbers
  erp:
    connector: sql
    url: sqlite:///data/erp.db    # relative SQLite paths are relative to this folder
    table: customers
    id_column: customer_id
    cursor: updated_at            # `crm-migrate sync` reads only rows changed since the last run
    mapping: mappings/erp.yaml
    related:                      # records that hang off a customer and follow it to the CRM
      orders: {table: orders, id_column: order_id, parent_key: customer_id}

# How records become one customer, and which value wins when copies disagree.
rules:
  match:
    # Probabilistic matching (Fellegi-Sunter, trained on these records with no labels).
    # Only records sharing a blocking key are compared: each rule is a list of fields.
    blocking: [[last_name, postcode], [email], [phone], [first_name, birth_date]]
    # How each field is compared: fuzzy names, e-mails and dates, exact phones.
    compare: {first_name: name, last_name: name, email: email, phone: phone, birth_date: date, postcode: postcode}
    # Two different birth dates never link; pairs between review and link go to the stewards.
    guards: [birth_date]
    thresholds: {link: 0.95, review: 0.60}
  survive:
    # Per attribute, try the ERP value first, then the most recently updated one.
    default: [{source_priority: [erp, contacts]}, most_recent]

# The new CRM: here a local SQLite database with the bundled reference schema.
target:
  url: sqlite:///crm.db
  schema: reference

# Load waves; each can be loaded and rolled back on its own. One wave for the demo.
phases:
  - name: all
"""

_ERP_MAPPING_YAML = """\
# ERP table `customers` -> CRM fields. business_unit is not mapped: the pipeline keeps it
# in `extra`. Orders are a related record set declared in migration.yaml.
id: customer_id
updated_at: updated_at
fields:
  title: title
  first_name: first_nm
  last_name: last_nm
  organization_name: company_nm
  emails: [email]
  phones: [phone, mobile]
  street: street
  city: city
  postcode: postcode
  country: country
  birth_date: dob
  email_opt_in: mkt_opt_in
"""

_ERP_SCHEMA = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY, title TEXT, first_nm TEXT, last_nm TEXT, company_nm TEXT,
    email TEXT, phone TEXT, mobile TEXT, street TEXT, city TEXT, postcode TEXT, country TEXT,
    dob TEXT, mkt_opt_in TEXT, business_unit TEXT, updated_at TEXT
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY, customer_id INTEGER, order_date TEXT, amount NUMERIC,
    currency TEXT, status TEXT
);
"""
_ERP_COLUMNS = ("customer_id", "title", "first_nm", "last_nm", "company_nm", "email", "phone",
                "mobile", "street", "city", "postcode", "country", "dob", "mkt_opt_in",
                "business_unit", "updated_at")


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`write_demo` wrote.

    Attributes:
        root: The migration folder.
        project: ``migration.yaml``.
        contacts_csv: The Outlook export.
        erp_db: The ERP SQLite database.
        erp_mapping: ``mappings/erp.yaml``.
        truth_csv: ``source,source_id,person_id`` for every source row.
        rows: Source rows per source (``contacts`` lines, ERP ``customers``).
        orders: Rows in the ERP ``orders`` table, orphans included.
        persons: Distinct persons and organisations behind the rows.
        bad_rows: Planted bad rows per kind (see :data:`BAD_ROW_KINDS`).
    """

    root: Path
    project: Path
    contacts_csv: Path
    erp_db: Path
    erp_mapping: Path
    truth_csv: Path
    rows: dict[str, int]
    orders: int
    persons: int
    bad_rows: dict[str, int]


def write_demo(target: Path, size: int = 2000, seed: int = 7) -> DemoFiles:
    """Write a demo migration folder with ``size`` source rows, the same for the same seed.

    About 55 % of the rows are Outlook contacts and 45 % ERP customers; a quarter of the
    persons are in both, 5 % of contacts rows are a second copy, and 3 % of the rows are
    bad in one of the ways listed in :data:`BAD_ROW_KINDS`. Files already there are
    overwritten.

    Args:
        target: The folder to write; created when missing.
        size: Source rows in all (contacts plus ERP customers), ``MIN_SIZE`` to ``MAX_SIZE``.
        seed: Seed of every random draw.

    Returns:
        The paths written and the counts of rows, persons and bad rows.

    Raises:
        ValueError: ``size`` is out of range.

    Example:
        >>> import tempfile
        >>> demo = write_demo(Path(tempfile.mkdtemp()), size=200)
        >>> sum(demo.rows.values()), demo.contacts_csv.name
        (200, 'contacts.csv')
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    target = Path(target)
    (target / "data").mkdir(parents=True, exist_ok=True)
    (target / "mappings").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = _vocab()
    plan = _plan(size, rng, vocab)
    files = DemoFiles(
        root=target,
        project=target / "migration.yaml",
        contacts_csv=target / "data" / "contacts.csv",
        erp_db=target / "data" / "erp.db",
        erp_mapping=target / "mappings" / "erp.yaml",
        truth_csv=target / "data" / "truth.csv",
        rows={"contacts": len(plan.contacts), "erp": len(plan.erp)},
        orders=len(plan.orders.customer_id),
        persons=len(plan.people.country),
        bad_rows={kind: int(n) for kind, n in plan.bad_counts.items()},
    )
    files.project.write_text(_MIGRATION_YAML, encoding="utf-8")
    files.erp_mapping.write_text(_ERP_MAPPING_YAML, encoding="utf-8")
    _write_contacts(files.contacts_csv, plan, vocab, seed)
    _write_erp(files.erp_db, plan, vocab, seed)
    _write_truth(files.truth_csv, plan)
    return files


# --- vocabulary -------------------------------------------------------------------------

_GB, _DE, _FR, _US = range(4)
_COUNTRY_CODE = ("GB", "DE", "FR", "US")
_COUNTRY_P = (0.40, 0.20, 0.15, 0.25)
_COUNTRY_NAME = ("United Kingdom", "Germany", "France", "United States")
_DIAL = ("44", "49", "33", "1")
_BUSINESS_UNIT = ("UK", "DE", "FR", "US")
_CURRENCY = ("GBP", "EUR", "EUR", "USD")

# Per country (GB, DE, FR, US); comma separated because some names have spaces.
_MALE = (
    ("James, Robert, William, Thomas, Michael, Richard, Christopher, Oliver, George, Harry, Jack,"
     " Daniel, Matthew, Andrew, David, Peter, Samuel, Liam, Callum, Rhys, Seán, Eoin, Niall,"
     " Alexander, Edward, Ian, Stuart, Graham"),
    ("Jürgen, Lukas, Maximilian, Alexander, Johannes, Wolfgang, Stefan, Thomas, Michael, Andreas,"
     " Klaus, Jörg, Sebastian, Florian, Tobias, Matthias, Uwe, Dieter, Felix, Paul, Jonas, Björn,"
     " Günter, Hans-Peter"),
    ("Jean, Pierre, Michel, Philippe, Nicolas, François, Julien, Thomas, Antoine, Mathieu,"
     " Sébastien, Guillaume, Laurent, Olivier, Éric, Jérôme, Louis, Hugo, Lucas, Théo, Raphaël,"
     " Jean-Baptiste, José, Noël"),
    ("John, Robert, Michael, William, David, Richard, Joseph, Thomas, Christopher, Charles, Daniel,"
     " Matthew, Anthony, Mark, Donald, Steven, Paul, Andrew, Joshua, Kevin, Brian, José, Luis,"
     " Carlos, Tyler"),
)
_FEMALE = (
    ("Elizabeth, Margaret, Katherine, Sarah, Emma, Olivia, Amelia, Charlotte, Sophie, Zoë, Chloë,"
     " Siobhán, Niamh, Aoife, Hannah, Lucy, Emily, Jennifer, Rebecca, Grace, Ann, Anne, Fiona,"
     " Rachel"),
    ("Katharina, Stefanie, Anna, Sophie, Marie, Lena, Julia, Laura, Sabine, Ursula, Monika, Petra,"
     " Jana, Lea, Hannah, Mia, Gisela, Brigitte, Ute, Annika, Björk, Jürgen-Marie, Käthe, Grete"),
    ("Marie, Nathalie, Isabelle, Sylvie, Catherine, Hélène, Céline, Sophie, Camille, Chloé, Léa,"
     " Manon, Émilie, Aurélie, Julie, Anaïs, Renée, Zoé, Margaux, Inès, Élodie, Françoise"),
    ("Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen, Nancy,"
     " Lisa, Betty, Margaret, Sandra, Ashley, Kimberly, Emily, Donna, Michelle, María, Zoë, Renée"),
)
_LAST = (
    ("Smith, Jones, Williams, Brown, Taylor, Davies, Evans, Wilson, Thomas, Roberts, Johnson,"
     " Lewis, Walker, Robinson, Wood, Thompson, White, Watson, Jackson, Wright, Green, Harris,"
     " Cooper, King, Lee, Martin, Clarke, James, Morgan, Hughes, Edwards, Hill, Moore, Clark,"
     " Harrison, Scott, Young, Morris, Hall, Ward, Turner, Carter, Phillips, Mitchell, Patel, Khan,"
     " O'Brien, O'Neill, McDonald, MacLeod, Ní Bhriain, Smith-Jones"),
    ("Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Schäfer,"
     " Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun, Krüger,"
     " Hofmann, Hartmann, Lange, Schmitt, Werner, Krause, Meier, Lehmann, Köhler, König, Weiß,"
     " Möller, Günther, Böhm, Jäger, Groß, Kühn, Øster, Østergaard, von der Heide,"
     " Müller-Lüdenscheidt"),
    ("Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, Simon,"
     " Laurent, Lefèbvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, Morel, Girard,"
     " André, Lefèvre, Mercier, Dupont, Lambert, Bonnet, François, Martinez, Legrand, Garnier,"
     " Faure, Rousseau, Blanc, Guérin, Muller, Chevalier, Le Gall, de la Fontaine, D'Almeida"),
    ("Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez,"
     " Hernandez, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee,"
     " Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, Young,"
     " Allen, King, Wright, Scott, Torres, Nguyen, Hill, Flores, Green, Adams, Nelson, Baker, Kim,"
     " Chen, Núñez, Peña, O'Connor"),
)
_TITLES_MALE = ("Mr", "Herr", "M.", "Mr.")
_TITLES_FEMALE = ("Mrs, Ms, Miss", "Frau", "Mme, Mlle", "Mrs., Ms.")
_TITLES_DOCTOR = ("Dr", "Dr.", "Dr", "Dr.")
_SUFFIXES = "Jr., Sr., III"          # US only
_NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Margaret": "Maggie",
    "Katherine": "Kate", "James": "Jim", "Richard": "Rick", "Thomas": "Tom", "Michael": "Mike",
    "Alexander": "Alex", "Jennifer": "Jen", "Christopher": "Chris", "Johannes": "Hans",
    "Katharina": "Kathi", "Stefanie": "Steffi", "Nicolas": "Nico", "Joseph": "Joe",
    "Daniel": "Dan", "Matthew": "Matt", "Patricia": "Patty", "Rebecca": "Becky",
}
_STREETS = (
    ("High Street, Station Road, Church Lane, Victoria Road, Green Lane, Manor Road, Park Avenue,"
     " Queen's Road, King Street, Mill Lane, The Crescent, Church Street, London Road, York Road"),
    ("Hauptstraße, Bahnhofstraße, Gartenstraße, Schulstraße, Dorfstraße, Lindenstraße, Bergstraße,"
     " Kirchstraße, Goethestraße, Schillerstraße, Am Markt, Friedrichstraße, Münchner Straße"),
    ("rue de la République, rue Victor Hugo, avenue Jean Jaurès, rue Pasteur, boulevard Voltaire,"
     " rue de la Paix, place de la Mairie, rue des Écoles, avenue de la Gare, chemin des Vignes"),
    ("Main St, Oak Ave, Maple Street, Washington Blvd, Park Ave, Elm Street, 2nd Avenue,"
     " Lake Shore Dr, Broadway, Sunset Blvd, Pine St"),
)
_MAX_HOUSE = (180, 120, 90, 9800)
_EMAIL_DOMAINS = (
    "gmail.com, outlook.com, btinternet.com, yahoo.co.uk, hotmail.co.uk",
    "gmx.de, web.de, t-online.de, gmail.com",
    "orange.fr, free.fr, laposte.net, gmail.com",
    "gmail.com, yahoo.com, outlook.com, icloud.com",
)
_COMPANY_SECTORS = (
    "Logistics, Consulting, Builders, Bakery, Engineering, Print, Legal, Dental",
    "Logistik, Beratung, Bau, Bäckerei, Maschinenbau, Druck, Elektro",
    "Transports, Conseil, Bâtiment, Boulangerie, Ingénierie, Imprimerie",
    "Analytics, Logistics, Construction, Bakery, Software, Realty",
)
# Appended to "<surname> <sector>"; ", Inc." makes some names need CSV quoting.
_COMPANY_FORMS = (
    (" Ltd", " PLC", " LLP", " & Sons Ltd"), (" GmbH", " AG", " GmbH & Co. KG"),
    (" SARL", " SA", " SAS"), (", Inc.", " LLC", " Corp.", " Inc."),
)
_WEB_TLD = (".co.uk", ".de", ".fr", ".com")
_JOBS = (
    "Sales Manager, Buyer, Director, Accountant, Office Manager, Head of Procurement, Engineer",
    "Geschäftsführer, Einkäufer, Vertriebsleiter, Buchhalterin, Ingenieur, Prokurist",
    "Directeur commercial, Acheteur, Comptable, Gérant, Ingénieure, Responsable achats",
    "Sales Manager, Purchasing Agent, VP Operations, Accountant, Office Manager, CEO",
)
_NOTES = (
    "", "", "", "", "Met at trade fair, wants a call back", "Prefers email",
    "Key account – renewal due Q3", "Referred by an existing customer",
    'Said "call me after the holidays"', "Sent brochure; follow up in spring",
)
_BROKEN_NOTE = "Called back\x1f left a message"   # \x1f becomes an unquoted comma on output
_CATEGORIES = ("", "", "Customers", "Prospects", "Suppliers", "VIP;Customers", "Holiday Cards")
_IMPOSSIBLE_DAY_MONTH = (("31", "02"), ("30", "02"), ("31", "04"), ("31", "06"), ("31", "09"),
                         ("31", "11"))
_ORDER_STATUS = ("completed", "shipped", "open", "cancelled", "refunded")
_ORDER_STATUS_P = (0.60, 0.15, 0.10, 0.10, 0.05)
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters UK inward codes use

# City, US state, landline national-number prefix, digit groups of the national number,
# and postcodes: outward codes (GB) or a numeric range. Grouped by country in _COUNTRY_CODE
# order, so an index into the per-country city table is an index into this tuple. Every prefix takes any 7-digit
# subscriber number starting 2-9 (Leeds or Bristol, say, would not).
_CITIES: tuple[tuple[int, str, str, str, tuple[int, ...], str | tuple[int, int]], ...] = (
    (_GB, "London", "", "207", (2, 4, 4), "SW1A EC1A N1 E2 SE1 W1D NW3 SW11"),
    (_GB, "Manchester", "", "161", (3, 3, 4), "M1 M4 M14 M20"),
    (_GB, "Glasgow", "", "141", (3, 3, 4), "G1 G12 G41"),
    (_GB, "Liverpool", "", "151", (3, 3, 4), "L1 L8 L18"),
    (_GB, "Newcastle upon Tyne", "", "191", (3, 3, 4), "NE1 NE2 NE6"),
    (_DE, "Berlin", "", "30", (2, 7), (10115, 14199)),
    (_DE, "Hamburg", "", "40", (2, 7), (20095, 22769)),
    (_DE, "München", "", "89", (2, 7), (80331, 81929)),
    (_DE, "Köln", "", "221", (3, 7), (50667, 51149)),
    (_DE, "Frankfurt am Main", "", "69", (2, 7), (60306, 60599)),
    (_FR, "Paris", "", "14", (1, 2, 2, 2, 2), (75001, 75020)),
    (_FR, "Lyon", "", "47", (1, 2, 2, 2, 2), (69001, 69009)),
    (_FR, "Marseille", "", "49", (1, 2, 2, 2, 2), (13001, 13016)),
    (_FR, "Toulouse", "", "56", (1, 2, 2, 2, 2), (31000, 31500)),
    (_FR, "Lille", "", "32", (1, 2, 2, 2, 2), (59000, 59800)),
    (_US, "New York", "NY", "212", (3, 3, 4), (10001, 10282)),
    (_US, "Chicago", "IL", "312", (3, 3, 4), (60601, 60661)),
    (_US, "San Francisco", "CA", "415", (3, 3, 4), (94102, 94134)),
    (_US, "Austin", "TX", "512", (3, 3, 4), (78701, 78759)),
    (_US, "Boston", "MA", "617", (3, 3, 4), (2108, 2137)),
)
# Mobile prefixes never start a landline number, so mobiles and landlines cannot collide.
_MOBILES: tuple[tuple[int, str, tuple[int, ...]], ...] = (
    (_GB, "795", (4, 6)), (_GB, "787", (4, 6)), (_GB, "778", (4, 6)),
    (_DE, "1512", (4, 7)), (_DE, "1701", (4, 7)), (_DE, "1761", (4, 7)),
    (_FR, "61", (1, 2, 2, 2, 2)), (_FR, "78", (1, 2, 2, 2, 2)),
    (_US, "917", (3, 3, 4)), (_US, "646", (3, 3, 4)), (_US, "347", (3, 3, 4)),
)

# Phone styles. Numbers in national format only parse with the right default region, so
# only GB contacts (default_region GB) use them; the ERP has no default region.
_INTL, _INTL_TRUNK, _INTL_DASHED, _E164, _NATIONAL, _NATIONAL_BRACKETS, _NATIONAL_DASHED = range(7)
_STYLE_P_CONTACTS_GB = (0.15, 0.05, 0.0, 0.10, 0.45, 0.15, 0.10)
_STYLE_P_INTERNATIONAL = (0.45, 0.20, 0.15, 0.20, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class _Table:
    """A vocabulary in per-group ranges (a group is a country, or a country and sex)."""

    values: np.ndarray
    start: np.ndarray
    count: np.ndarray

    def draw(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniform random index into each row's group."""
        return (self.start[group] + rng.random(len(group)) * self.count[group]).astype(np.int32)


def _table(groups: Sequence[Sequence[str]]) -> _Table:
    counts = np.array([len(g) for g in groups])
    values = np.array([v for g in groups for v in g], dtype=object)
    return _Table(values, np.r_[0, np.cumsum(counts)[:-1]], counts)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


_ASCII_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "o", "æ": "ae",
                             "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "Ø": "O", "Æ": "Ae"})


def _ascii_local(name: str) -> str:
    """A name as people write it in an e-mail address: ``Müller`` -> ``mueller``."""
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII_FOLD))
    return "".join(c for c in folded.lower() if c.isascii() and (c.isalnum() or c == "-"))


def _typo(name: str, i: int) -> str:
    """A plausible typing slip: two letters swapped, one dropped or one doubled."""
    mid = len(name) // 2
    swapped = name[:mid - 1] + name[mid] + name[mid - 1] + name[mid + 1:]
    if i % 3 == 0 and swapped != name:
        return swapped
    if i % 3 == 1 and len(name) > 4:
        return name[:mid] + name[mid + 1:]
    return name[:mid] + name[mid] + name[mid:]


def _ids(values: Sequence[str]) -> np.ndarray:
    """Equal strings get equal small integer ids (for collision-free e-mail keys)."""
    return np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)[1]


@dataclass(frozen=True)
class _Vocab:
    """Every list the demo draws from, as arrays a person's indices can address at once."""

    first: _Table            # groups: country * 2 + female
    last: _Table             # groups: country
    titles: _Table           # groups: country * 2 + female
    doctor: np.ndarray       # per country
    suffixes: np.ndarray
    first_typo: np.ndarray
    first_nick: np.ndarray
    first_ascii: np.ndarray
    first_initial: np.ndarray
    first_ascii_id: np.ndarray
    first_initial_id: np.ndarray
    last_ascii: np.ndarray
    last_initial: np.ndarray
    last_ascii_id: np.ndarray
    last_initial_id: np.ndarray
    streets: _Table
    domains: _Table
    domain_id: np.ndarray
    sectors: _Table
    sector_ascii: np.ndarray
    forms: _Table
    jobs: _Table
    cities: _Table
    city_state: np.ndarray
    city_outward: _Table     # groups: city (GB cities only have entries)
    city_low: np.ndarray
    city_high: np.ndarray
    mobiles: _Table          # groups: country; values index into phone prefixes
    phone_prefix: np.ndarray  # fixed-width str: phones are cut with np.strings
    phone_country: np.ndarray
    phone_groups: np.ndarray  # index into group_bounds
    group_bounds: tuple[tuple[tuple[int, int], ...], ...]
    inward: np.ndarray       # "1AB"... every GB inward code
    number: np.ndarray       # 0..9999 as text: indexing beats formatting a million ints
    zip5: np.ndarray         # 0..99999 as five digits


@lru_cache(maxsize=1)
def _vocab() -> _Vocab:
    first_groups = [_split(names) for pair in zip(_MALE, _FEMALE, strict=True) for names in pair]
    first = _table(first_groups)
    last = _table([_split(names) for names in _LAST])
    title_groups = [_split(t) for pair in zip(_TITLES_MALE, _TITLES_FEMALE, strict=True) for t in pair]
    titles = _table(title_groups)

    first_ascii = np.array([_ascii_local(n) for n in first.values], dtype=object)
    last_ascii = np.array([_ascii_local(n) for n in last.values], dtype=object)
    first_initial = np.array([a[0] for a in first_ascii], dtype=object)
    last_initial = np.array([a[0] for a in last_ascii], dtype=object)

    landline_specs = [(c, prefix, groups) for c, _, _, prefix, groups, _ in _CITIES]
    specs = landline_specs + list(_MOBILES)
    patterns = sorted({groups for _, _, groups in specs})
    bounds = tuple(tuple(zip(np.r_[0, np.cumsum(p)[:-1]].tolist(), np.cumsum(p).tolist(), strict=True))
                   for p in patterns)
    mobiles = _table([[len(landline_specs) + i for i, m in enumerate(_MOBILES) if m[0] == c]
                      for c in range(4)])

    outward = _table([spec.split() if isinstance(spec, str) else [] for *_, spec in _CITIES])
    numeric = [spec if isinstance(spec, tuple) else (0, 0) for *_, spec in _CITIES]
    letters = np.array(list(_POSTCODE_LETTERS), dtype=object)
    codes = np.arange(10 * len(letters) ** 2)
    number = np.arange(10_000).astype(str).astype(object)
    inward = (number[codes // len(letters) ** 2]
              + letters[codes // len(letters) % len(letters)] + letters[codes % len(letters)])
    domains = _table([_split(d) for d in _EMAIL_DOMAINS])
    sectors = _table([_split(s) for s in _COMPANY_SECTORS])
    return _Vocab(
        first=first, last=last, titles=titles,
        doctor=np.array(_TITLES_DOCTOR, dtype=object),
        suffixes=np.array(_split(_SUFFIXES), dtype=object),
        first_typo=np.array([_typo(n, i) for i, n in enumerate(first.values)], dtype=object),
        first_nick=np.array([_NICKNAMES.get(n, n) for n in first.values], dtype=object),
        first_ascii=first_ascii, first_initial=first_initial,
        first_ascii_id=_ids(first_ascii), first_initial_id=_ids(first_initial),
        last_ascii=last_ascii, last_initial=last_initial,
        last_ascii_id=_ids(last_ascii), last_initial_id=_ids(last_initial),
        streets=_table([_split(s) for s in _STREETS]),
        domains=domains, domain_id=_ids(domains.values),
        sectors=sectors,
        sector_ascii=np.array([_ascii_local(s) for s in sectors.values], dtype=object),
        forms=_table(_COMPANY_FORMS),
        jobs=_table([_split(j) for j in _JOBS]),
        cities=_table([[name for c, name, *_ in _CITIES if c == country] for country in range(4)]),
        city_state=np.array([state for _, _, state, *_ in _CITIES], dtype=object),
        city_outward=outward,
        city_low=np.array([lo for lo, _ in numeric]),
        city_high=np.array([hi for _, hi in numeric]),
        mobiles=_Table(mobiles.values.astype(np.int32), mobiles.start, mobiles.count),
        phone_prefix=np.array([prefix for _, prefix, _ in specs], dtype=str),
        phone_country=np.array([c for c, _, _ in specs]),
        phone_groups=np.array([patterns.index(groups) for _, _, groups in specs]),
        group_bounds=bounds,
        inward=inward, number=number,
        zip5=np.char.zfill(np.arange(100_000).astype(str), 5).astype(object),
    )


# --- persons and the rows that copy them ------------------------------------------------

@dataclass(frozen=True)
class _People:
    """Per-person draws, as indices into the vocabulary (strings are rendered per chunk)."""

    country: np.ndarray
    is_org: np.ndarray
    female: np.ndarray
    first: np.ndarray
    middle: np.ndarray        # -1: none
    last: np.ndarray
    title: np.ndarray
    doctor: np.ndarray
    suffix: np.ndarray        # -1: none
    city: np.ndarray
    outward: np.ndarray
    postcode: np.ndarray      # GB: inward code index; elsewhere the numeric postcode
    street: np.ndarray
    house: np.ndarray
    flat: np.ndarray          # 0: none
    birth: np.ndarray         # days since 1940-01-01; -1: unknown
    has_landline: np.ndarray
    mobile: np.ndarray        # phone prefix index; -1: none
    email_pattern: np.ndarray  # -1: no personal e-mail
    domain: np.ndarray
    email_n: np.ndarray       # how many persons took this address before (suffix 2, 3...)
    employed: np.ndarray
    company_last: np.ndarray
    sector: np.ndarray
    form: np.ndarray
    job: np.ndarray
    work_email: np.ndarray
    work_n: np.ndarray
    work_first: np.ndarray    # contacts list the work address as E-mail Address


def _draw_people(n: int, rng: np.random.Generator, v: _Vocab) -> _People:
    """Draw ``n`` persons (3 % organisations) with unique e-mail addresses and phones."""
    country = rng.choice(4, size=n, p=_COUNTRY_P)
    is_org = rng.random(n) < 0.03
    female = rng.random(n) < 0.5
    sex_group = country * 2 + female
    first = v.first.draw(sex_group, rng)
    last = v.last.draw(country, rng)
    middle = np.where(np.isin(country, (_GB, _US)) & (rng.random(n) < 0.15),
                      v.first.draw(sex_group, rng), -1)
    title = v.titles.draw(sex_group, rng)
    suffix = np.where((country == _US) & (rng.random(n) < 0.04),
                      rng.integers(0, len(v.suffixes), n, dtype=np.int32), -1)
    city = v.cities.draw(country, rng)
    low, high = v.city_low[city], v.city_high[city]
    postcode = np.where(country == _GB, rng.integers(0, len(v.inward), n, dtype=np.int32),
                        (low + rng.random(n) * (high - low + 1)).astype(np.int32))
    house = 1 + (rng.random(n) * np.array(_MAX_HOUSE)[country]).astype(np.int32)
    flat = np.where((country == _GB) & (rng.random(n) < 0.1), rng.integers(1, 12, n, dtype=np.int32), 0)
    birth = np.where(~is_org & (rng.random(n) < 0.7), rng.integers(0, 23_740, n, dtype=np.int32), -1)
    mobile = np.where(~is_org & (rng.random(n) < 0.75), v.mobiles.values[v.mobiles.draw(country, rng)], -1)

    email_pattern = np.where(~is_org & (rng.random(n) < 0.8), rng.integers(0, 4, n, dtype=np.int32), -1)
    domain = v.domains.draw(country, rng)
    employed = is_org | (rng.random(n) < 0.45)
    company_last = v.last.draw(country, rng)
    sector = v.sectors.draw(country, rng)
    work_email = is_org | (employed & (rng.random(n) < 0.5))
    # Keys that are equal exactly when the rendered addresses would be equal: the suffix
    # counter then makes every address belong to one person, as it does in real life.
    left = np.where(email_pattern == 2, v.first_initial_id[first], v.first_ascii_id[first])
    right = np.where(email_pattern == 3, v.last_initial_id[last], v.last_ascii_id[last])
    personal_key = np.where(email_pattern >= 0,
                            ((email_pattern * 2**10 + left) * 2**10 + right) * 2**10
                            + v.domain_id[domain], -1 - np.arange(n))
    # Name and domain ids are below 2**10, sectors below 2**6: no key can overflow int64.
    slug = (country * 2**10 + v.last_ascii_id[company_last]) * 2**6 + sector
    work_key = np.where(is_org, slug * 2,
                        ((slug * 2**10 + v.first_initial_id[first]) * 2**10
                         + v.last_ascii_id[last]) * 2 + 1)
    drawn = {
        "country": country, "is_org": is_org, "female": female, "first": first, "middle": middle, "last": last,
        "title": title, "doctor": rng.random(n) < 0.04, "suffix": suffix, "city": city,
        "outward": v.city_outward.draw(city, rng), "postcode": postcode,
        "street": v.streets.draw(country, rng), "house": house, "flat": flat, "birth": birth,
        "has_landline": is_org | (rng.random(n) < 0.65), "mobile": mobile,
        "email_pattern": email_pattern, "domain": domain, "email_n": _occurrence(personal_key),
        "employed": employed, "company_last": company_last, "sector": sector,
        "form": v.forms.draw(country, rng), "job": v.jobs.draw(country, rng),
        "work_email": work_email, "work_n": _occurrence(np.where(work_email, work_key, -1 - np.arange(n))),
        "work_first": rng.random(n) < 0.5,
    }
    # int32 halves the memory of a million persons; every index and count fits.
    return _People(**{k: a.astype(np.int32) if a.dtype == np.int64 else a for k, a in drawn.items()})


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """For each key, how many earlier elements have the same key (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    positions = np.arange(len(keys))
    group_start = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], positions, 0))
    out = np.empty(len(keys), dtype=np.int32)
    out[order] = positions - group_start
    return out


@dataclass(frozen=True)
class _Plan:
    """Which person each source row copies, which rows are bad, and the orders."""

    people: _People
    contacts: np.ndarray       # person index per contacts row, in file order
    erp: np.ndarray            # person index per customers row, by customer_id
    customer_ids: np.ndarray
    contacts_bad: np.ndarray   # bad-row code per row, 0 when good
    erp_bad: np.ndarray
    orders: _Orders
    bad_counts: dict[str, int]


def _plan(size: int, rng: np.random.Generator, v: _Vocab) -> _Plan:
    """Split ``size`` rows into contacts and ERP copies of persons, and pick the bad rows."""
    n_contacts = round(size * _CONTACTS_SHARE)
    n_erp = size - n_contacts
    second_copies = round(n_contacts * _WITHIN_CONTACTS_DUPLICATES)
    first_copies = n_contacts - second_copies
    # persons = first_copies + n_erp - both, and both = 25 % of persons.
    both = round((first_copies + n_erp) * _IN_BOTH_SOURCES / (1 + _IN_BOTH_SOURCES))
    n_persons = first_copies + n_erp - both
    people = _draw_people(n_persons, rng, v)

    # Persons 0..both-1 are in both sources, then contacts-only, then ERP-only; the draws
    # are independent of the index, so ranges are as random as a shuffle.
    in_contacts = np.arange(first_copies)
    contacts = rng.permutation(np.r_[in_contacts, rng.choice(in_contacts, second_copies, replace=False)])
    erp = rng.permutation(np.r_[np.arange(both), np.arange(first_copies, n_persons)])
    steps = 1 + (rng.random(n_erp) < 0.05) * rng.integers(1, 4, n_erp)  # deleted customers leave gaps
    customer_ids = 10_000 + np.cumsum(steps)

    rows = np.r_[contacts, erp]
    bad = np.zeros(size, dtype=np.int8)
    single = np.bincount(rows, minlength=n_persons)[rows] == 1
    has_email = (people.email_pattern >= 0)[rows] | people.work_email[rows]
    is_person = ~people.is_org[rows]
    in_contacts_file = np.arange(size) < n_contacts
    eligible = {"no_identity": single, "wrong_column_count": in_contacts_file,
                "invalid_email": has_email, "impossible_birth_date": is_person}
    counts: dict[str, int] = {}
    for kind, mask in eligible.items():
        candidates = np.flatnonzero(mask & (bad == 0))
        counts[kind] = min(len(candidates), max(1, round(size * _BAD_RATES[kind])))
        bad[rng.choice(candidates, counts[kind], replace=False)] = _BAD_CODE[kind]
    orders = _draw_orders(customer_ids, people.country[erp], rng)
    counts["orphan_order"] = int((~np.isin(orders.customer_id, customer_ids)).sum())
    return _Plan(people, contacts, erp, customer_ids, bad[:n_contacts], bad[n_contacts:],
                 orders, {kind: counts[kind] for kind in BAD_ROW_KINDS})


@dataclass(frozen=True)
class _Orders:
    """The ERP orders, by order date; numbers only, rendered when written."""

    customer_id: np.ndarray
    day: np.ndarray          # days since 2016-01-01
    amount: np.ndarray
    currency: np.ndarray     # index into _CURRENCY
    status: np.ndarray       # index into _ORDER_STATUS


def _draw_orders(customer_ids: np.ndarray, country: np.ndarray, rng: np.random.Generator) -> _Orders:
    per_customer = rng.choice(5, size=len(customer_ids), p=(0.30, 0.30, 0.20, 0.12, 0.08))
    owner = np.repeat(customer_ids, per_customer)
    currency = np.repeat(country, per_customer)
    n_orphans = max(3, round(len(owner) * _ORPHAN_ORDER_RATE))
    # Orders of deleted customers point into the gaps of customer_id.
    gaps = np.setdiff1d(np.arange(customer_ids[0], customer_ids[-1]), customer_ids)
    if len(gaps) == 0:
        gaps = customer_ids[-1] + np.arange(1, 4)
    owner = np.r_[owner, rng.choice(gaps, n_orphans)]
    currency = np.r_[currency, rng.integers(0, len(_CURRENCY), n_orphans)]
    n = len(owner)
    day = rng.integers(0, 3_468, n)   # 2016-01-01 .. 2025-06-30
    order = np.argsort(day, kind="stable")
    return _Orders(customer_id=owner[order], day=day[order],
                   amount=np.round(rng.lognormal(4.2, 0.9, n), 2), currency=currency[order],
                   status=rng.choice(len(_ORDER_STATUS), n, p=_ORDER_STATUS_P))


# --- rendering a chunk of rows ----------------------------------------------------------

_Strings = np.ndarray  # object arrays of str; "" means no value
# Everything a no_identity row loses: it keeps only its city.
_IDENTITY_FIELDS = ("title", "first", "middle", "last", "suffix", "company", "job", "street",
                    "state", "postcode", "landline", "mobile", "personal", "work", "birth")
# Multipliers coprime with 8_000_000 (odd, not divisible by 5): landlines, mobiles.
_PHONE_MULTIPLIERS = (2_654_435_761, 40_692_013)


def _recase(values: _Strings, rows: np.ndarray, how: str) -> _Strings:
    """``values`` with ``str.<how>`` (upper, lower, capitalize) applied to ``rows`` only."""
    out = values.copy()
    if rows.any():
        out[rows] = getattr(pd.Series(values[rows], dtype=object).str, how)().to_numpy(dtype=object)
    return out


def _counter_suffix(counter: np.ndarray) -> _Strings:
    """The 2, 3... that tells apart addresses that would otherwise be equal."""
    out = np.full(len(counter), "", dtype=object)
    later = counter > 0
    out[later] = (counter[later] + 1).astype(str).astype(object)
    return out


def _subscriber(person: np.ndarray, seed: int, kind: int) -> np.ndarray:
    """A 7-digit number unique per person (for up to 8 million persons), first digit 2-9.

    ``(i * a + b) mod m`` is a permutation of ``0..m-1`` when ``a`` is coprime with ``m``;
    a leading 0 or 1 is not a valid subscriber number in any of the four countries.
    """
    m = 8_000_000
    number = 2_000_000 + (person.astype(np.int64) * _PHONE_MULTIPLIERS[kind] + seed * 7_919) % m
    return number.astype(str)


def _join(parts: list[np.ndarray], sep: str) -> np.ndarray:
    out = parts[0]
    for part in parts[1:]:
        out = out + sep + part
    return out


def _style_phone(style: int, dial: str, g: list[np.ndarray]) -> np.ndarray:
    if style == _INTL:
        return f"+{dial} " + _join(g, " ")
    if style == _INTL_TRUNK:
        # North America has no trunk prefix; there the area code goes in brackets.
        return (f"+{dial} (" + g[0] + ") " + _join(g[1:], "-") if dial == "1"
                else f"+{dial} (0)" + _join(g, " "))
    if style == _INTL_DASHED:
        return f"+{dial}-" + _join(g, "-")
    if style == _E164:
        return f"+{dial}" + _join(g, "")
    if style == _NATIONAL:
        return "0" + _join(g, " ")
    if style == _NATIONAL_BRACKETS:
        return "(0" + g[0] + ") " + _join(g[1:], " ")
    return "0" + _join(g, "-")


def _phones(prefix: np.ndarray, person: np.ndarray, style: np.ndarray, seed: int, kind: int,
            v: _Vocab) -> _Strings:
    """Render phone numbers (prefix index -1: none) in each row's style."""
    out = np.full(len(person), "", dtype=object)
    has = np.flatnonzero(prefix >= 0)
    spec = prefix[has]
    digits = np.strings.add(v.phone_prefix[spec], _subscriber(person[has], seed, kind))
    combo = (v.phone_groups[spec] * 8 + style[has]) * 4 + v.phone_country[spec]
    for code in np.unique(combo):
        rows = combo == code
        rest, country = divmod(int(code), 4)
        pattern, row_style = divmod(rest, 8)
        parts = [np.strings.slice(digits[rows], a, b) for a, b in v.group_bounds[pattern]]
        out[has[rows]] = _style_phone(row_style, _DIAL[country], parts).astype(object)
    return out


def _phone_styles(country: np.ndarray, national: bool, rng: np.random.Generator) -> np.ndarray:
    """A phone style per row; national formats only where they parse (GB rows, national=True)."""
    style = rng.choice(7, len(country), p=_STYLE_P_INTERNATIONAL)
    if national:
        style = np.where(country == _GB, rng.choice(7, len(country), p=_STYLE_P_CONTACTS_GB), style)
    return style


def _pick(rng: np.random.Generator, choices: Sequence[str], n: int) -> _Strings:
    return rng.choice(np.array(choices, dtype=object), n)


def _render(persons: np.ndarray, bad: np.ndarray, seed: int, national_phones: bool,
            upper_rate: float, p: _People, v: _Vocab, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Render one chunk of source rows: every copy of a person varies a little.

    Bad rows get no variation, so each carries exactly its one defect (applied here for
    ``no_identity`` and ``invalid_email``; the writers apply the date and column defects).
    """
    n = len(persons)
    clean = bad == 0
    country, org, employed = p.country[persons], p.is_org[persons], p.employed[persons]
    first_i, last_i = p.first[persons], p.last[persons]
    chance = rng.random((6, n))

    first = np.where(clean & (chance[0] < 0.03), v.first_typo[first_i], v.first.values[first_i])
    first = np.where(clean & (chance[0] > 0.97), v.first_nick[first_i], first)
    last = v.last.values[last_i]
    company = np.where(employed, v.last.values[p.company_last[persons]] + " "
                       + v.sectors.values[p.sector[persons]] + v.forms.values[p.form[persons]], "")
    upper, lower = clean & (chance[1] < upper_rate), clean & (chance[1] > 0.98)
    first = _recase(_recase(first, upper, "upper"), lower, "lower")
    last = _recase(_recase(last, upper, "upper"), lower, "lower")
    company = _recase(company, upper, "upper")
    spaced = clean & (chance[2] < 0.015)
    first[spaced] = first[spaced] + " "
    spaced = clean & (chance[2] > 0.985)
    last[spaced] = "  " + last[spaced]
    middle = np.where(p.middle[persons] >= 0, v.first.values[p.middle[persons]], "")
    suffix = np.where(p.suffix[persons] >= 0, v.suffixes[p.suffix[persons]], "")
    title = np.where(p.doctor[persons], v.doctor[country], v.titles.values[p.title[persons]])
    for values in (first, last, middle, suffix, title):
        values[org] = ""

    house, street_name = v.number[p.house[persons]], v.streets.values[p.street[persons]]
    street = house + " " + street_name
    de = country == _DE
    street[de] = street_name[de] + " " + house[de]
    flat = p.flat[persons] > 0
    street[flat] = "Flat " + v.number[p.flat[persons][flat]] + ", " + street[flat]
    city_i = p.city[persons]
    gb = country == _GB
    postcode = v.zip5[np.where(gb, 0, p.postcode[persons])]
    postcode[gb] = (v.city_outward.values[p.outward[persons][gb]] + " "
                    + v.inward[p.postcode[persons][gb]])

    # Landline prefixes come first, one per city in _CITIES order.
    land_prefix = np.where(p.has_landline[persons], city_i, -1)
    landline = _phones(land_prefix, persons, _phone_styles(country, national_phones, rng), seed, 0, v)
    mobile = _phones(p.mobile[persons], persons, _phone_styles(country, national_phones, rng), seed, 1, v)

    personal = np.full(n, "", dtype=object)
    has = np.flatnonzero(p.email_pattern[persons] >= 0)
    pattern, fi, li, ph = p.email_pattern[persons[has]], first_i[has], last_i[has], persons[has]
    personal[has] = (np.where(pattern == 2, v.first_initial[fi], v.first_ascii[fi])
                     + np.where(pattern == 1, "_", ".").astype(object)
                     + np.where(pattern == 3, v.last_initial[li], v.last_ascii[li])
                     + _counter_suffix(p.email_n[ph]) + "@" + v.domains.values[p.domain[ph]])
    work = np.full(n, "", dtype=object)
    has = np.flatnonzero(p.work_email[persons])
    pw = persons[has]
    slug = (v.last_ascii[p.company_last[pw]] + "-" + v.sector_ascii[p.sector[pw]]
            + np.array(_WEB_TLD, dtype=object)[country[has]])
    work_local = np.where(org[has], "info", v.first_initial[first_i[has]] + "." + v.last_ascii[last_i[has]])
    work[has] = work_local + _counter_suffix(p.work_n[pw]) + "@" + slug
    shout, capital = clean & (chance[3] < 0.025), clean & (chance[3] > 0.975)
    personal = _recase(_recase(personal, shout, "upper"), capital, "capitalize")
    work = _recase(work, shout, "upper")

    birth = np.full(n, "", dtype=object)
    born = p.birth[persons] >= 0
    birth[born] = np.datetime_as_string(np.datetime64("1940-01-01") + p.birth[persons][born]).astype(object)
    # One field left empty in some copies, as people skip fields when typing.
    missing = np.where(clean & (chance[4] < 0.06), (chance[5] * 5).astype(int), -1)
    for code, values in enumerate((personal, mobile, landline, birth, street)):
        values[missing == code] = ""

    broken = np.flatnonzero(bad == _BAD_CODE["invalid_email"])
    if len(broken):
        a = pd.Series(np.where(personal != "", personal, work)[broken], dtype=object).str
        how = rng.integers(0, 3, len(broken))
        personal[broken] = np.select(
            [how == 0, how == 1],
            [a.replace(r"@(.*)\.[a-z]+$", r"@@\1", regex=True),    # ann.lee@@gmail
             a.replace("@", " at ", regex=False)],                 # ann.lee at gmail.com
            a.replace(r"\.([a-z]+)$", r",\1", regex=True))          # ann.lee@gmail,com
        work[broken] = ""

    fields: dict[str, np.ndarray] = {
        "title": title, "first": first, "middle": middle, "last": last, "suffix": suffix,
        "company": company, "job": np.where(employed & ~org, v.jobs.values[p.job[persons]], ""),
        "street": street, "city": v.cities.values[city_i], "state": v.city_state[city_i],
        "postcode": postcode, "country": country, "landline": landline, "mobile": mobile,
        "personal": personal, "work": work, "birth": birth,
        "employed": employed, "work_first": p.work_first[persons],
    }
    empty = bad == _BAD_CODE["no_identity"]
    for name in _IDENTITY_FIELDS:
        fields[name][empty] = ""
    fields["no_identity"] = empty
    return fields


def _impossible_dates(bad: np.ndarray, birth: _Strings, rng: np.random.Generator,
                      iso: bool) -> _Strings:
    """Birth dates with the impossible-date rows replaced by a day that does not exist."""
    rows = bad == _BAD_CODE["impossible_birth_date"]
    k = int(rows.sum())
    day_month = np.array(_IMPOSSIBLE_DAY_MONTH, dtype=object)[rng.integers(0, len(_IMPOSSIBLE_DAY_MONTH), k)]
    year = rng.integers(1940, 2005, k).astype(str).astype(object)
    wrong = (year + "-" + day_month[:, 1] + "-" + day_month[:, 0] if iso
             else day_month[:, 0] + "/" + day_month[:, 1] + "/" + year)
    out = birth.copy()
    out[rows] = wrong
    return out


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, _CHUNK_ROWS):
        yield slice(start, min(start + _CHUNK_ROWS, n))


def _chunk_rng(seed: int, stream: int, part: slice) -> np.random.Generator:
    # One generator per chunk: the output depends on the seed and size only.
    return np.random.default_rng([seed, stream, part.start])


# --- writing ----------------------------------------------------------------------------

def _write_contacts(path: Path, plan: _Plan, v: _Vocab, seed: int) -> None:
    """Outlook export: UTF-8 with BOM, CRLF, quoted where needed, no line breaks in fields.

    Because no field holds a line break, data row k (1 = first after the header) is on
    physical line k + 1, and ``line{k+1}`` is the source id the pipeline and truth.csv use.
    """
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        for part in _chunks(len(plan.contacts)):
            rng = _chunk_rng(seed, 1, part)
            persons, bad = plan.contacts[part], plan.contacts_bad[part]
            f = _render(persons, bad, seed, True, 0.02, plan.people, v, rng)
            n = len(persons)
            work_first = f["work_first"] & (f["work"] != "")
            primary = np.where(work_first | (f["personal"] == ""), f["work"], f["personal"])
            second = np.where(work_first, f["personal"], np.where(f["personal"] != "", f["work"], ""))
            birthday = f["birth"].copy()
            born = birthday != ""
            iso = birthday[born].astype("U10")
            birthday[born] = (np.strings.slice(iso, 8, 10) + "/" + np.strings.slice(iso, 5, 7)
                              + "/" + np.strings.slice(iso, 0, 4)).astype(object)
            notes = np.where(bad == _BAD_CODE["wrong_column_count"], _BROKEN_NOTE,
                             np.where(f["no_identity"], "", _pick(rng, _NOTES, n)))
            frame = pd.DataFrame({
                "Title": np.where(rng.random(n) < 0.5, f["title"], ""),
                "First Name": f["first"], "Middle Name": f["middle"], "Last Name": f["last"],
                "Suffix": f["suffix"], "Company": f["company"], "Job Title": f["job"],
                "Business Street": f["street"], "Business City": f["city"],
                "Business State": f["state"], "Business Postal Code": f["postcode"],
                "Business Country/Region": np.where(f["no_identity"], "",
                                                    np.array(_COUNTRY_NAME, dtype=object)[f["country"]]),
                "Business Phone": np.where(f["employed"], f["landline"], ""),
                "Home Phone": np.where(f["employed"], "", f["landline"]),
                "Mobile Phone": f["mobile"], "E-mail Address": primary, "E-mail 2 Address": second,
                "E-mail 3 Address": "",
                "Birthday": _impossible_dates(bad, birthday, rng, iso=False),
                "Notes": notes, "Categories": np.where(f["no_identity"], "", _pick(rng, _CATEGORIES, n)),
            }, columns=list(OUTLOOK_COLUMNS))
            text = frame.to_csv(index=False, header=part.start == 0, lineterminator="\r\n")
            out.write(text.replace("\x1f", ","))


def _write_erp(path: Path, plan: _Plan, v: _Vocab, seed: int) -> None:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        # A generated file: nothing to protect against a crash half-way, so no journal.
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(_ERP_SCHEMA)
        insert = f"INSERT INTO customers VALUES ({', '.join('?' * len(_ERP_COLUMNS))})"
        for part in _chunks(len(plan.erp)):
            rng = _chunk_rng(seed, 2, part)
            persons, bad = plan.erp[part], plan.erp_bad[part]
            f = _render(persons, bad, seed, False, 0.15, plan.people, v, rng)
            n = len(persons)
            country = np.array(_COUNTRY_CODE, dtype=object)[f["country"]]
            country = np.where((country == "GB") & (rng.random(n) < 0.3), "UK", country)
            seconds = rng.integers(0, 205_000_000, n)   # 2019-01-01 .. mid 2025
            text = {
                "title": np.where(rng.random(n) < 0.9, f["title"], ""),
                "first_nm": f["first"], "last_nm": f["last"], "company_nm": f["company"],
                "email": np.where(f["personal"] != "", f["personal"], f["work"]),
                "phone": f["landline"], "mobile": f["mobile"], "street": f["street"],
                "city": f["city"], "postcode": f["postcode"],
                "country": np.where(f["no_identity"], "", country),
                "dob": _impossible_dates(bad, f["birth"], rng, iso=True),
            }
            # Old MySQL-style systems write a zero date for "unknown"; it is no bad row.
            zero = (text["dob"] == "") & ~f["no_identity"] & (rng.random(n) < 0.2)
            text["dob"][zero] = "0000-00-00"
            # Legacy databases say NULL, not "", for a value nobody entered.
            columns = {name: np.where(values == "", None, values) for name, values in text.items()}
            columns["customer_id"] = plan.customer_ids[part]
            columns["mkt_opt_in"] = rng.choice(np.array(["Y", "N", ""], dtype=object), n, p=(0.45, 0.35, 0.20))
            columns["business_unit"] = np.array(_BUSINESS_UNIT, dtype=object)[plan.people.country[persons]]
            columns["updated_at"] = np.datetime_as_string(
                np.datetime64("2019-01-01T00:00:00") + seconds.astype("timedelta64[s]"))
            con.executemany(insert, zip(*(columns[name].tolist() for name in _ERP_COLUMNS), strict=True))
        orders = plan.orders
        for part in _chunks(len(orders.customer_id)):
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", zip(
                range(500_001 + part.start, 500_001 + part.stop),
                orders.customer_id[part].tolist(),
                np.datetime_as_string(np.datetime64("2016-01-01") + orders.day[part]).tolist(),
                orders.amount[part].tolist(),
                np.array(_CURRENCY)[orders.currency[part]].tolist(),
                np.array(_ORDER_STATUS)[orders.status[part]].tolist(),
                strict=True,
            ))
        con.commit()
    finally:
        con.close()


def _write_truth(path: Path, plan: _Plan) -> None:
    sources: list[tuple[str, Callable[[slice], np.ndarray], np.ndarray]] = [
        # The export has no id column: the pipeline's id is the physical line ("line2" is data row 1).
        ("contacts", lambda part: np.char.add("line", np.arange(part.start + 2, part.stop + 2).astype(str)),
         plan.contacts),
        ("erp", lambda part: plan.customer_ids[part], plan.erp),
    ]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("source,source_id,person_id\n")
        for name, source_ids, persons in sources:
            for part in _chunks(len(persons)):
                frame = pd.DataFrame({"source": name, "source_id": source_ids(part),
                                      "person_id": persons[part] + 1})
                out.write(frame.to_csv(index=False, header=False, lineterminator="\n"))
