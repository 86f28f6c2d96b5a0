"""Benchmark the standardise stage against a naive per-row ``apply`` of the same libraries.

Generates N canonical records (seeded) from three sources that write the same customers
differently: parts or full names, national or international phones, day-first,
month-first or ISO dates and Excel serials, country names in several languages, role and
broken e-mails, placeholders. Customers appear in 2.5 records on average (the duplicates
a migration exists to merge). Prints the median rows/s of ``standardise`` over ``--runs``
runs, and of a naive row-by-row apply over a random sample of ``--naive-rows`` rows (its
cost per row does not depend on N, as it caches nothing), and the ratio.

    python bench/standardise.py --rows 1000000 --runs 3 --naive-rows 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
from anyascii import anyascii
from dateutil import parser as dateparser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules import addresses, consent, emails, names, phones  # noqa: E402
from rules.standardise import standardise  # noqa: E402

FIRST = ("Ann", "John", "Mary", "James", "Anne-Marie", "José", "Zoë", "Mohammed", "Wei", "Olga", "Ivan", "Sven",
         "Chloé", "Liam", "Noah", "Emma", "Hiroshi", "Priya", "Fatima", "Lukas", "Иван", "Ольга", "Γιώργος", "Sean",
         "Siobhan", "Pierre", "Marie", "Jürgen", "Aoife", "Carlos", "Lucía", "Giulia", "Matteo", "Sofia", "Ahmed")
LAST = ("Smith", "Jones", "McDonald", "MacLeod", "O'Brien", "van der Berg", "de la Cruz", "Müller", "Schmidt", "Dubois",
        "García", "Rossi", "Nowak", "Kowalski", "Ivanov", "Петров", "Иванова", "Papadopoulos", "Παπαδόπουλος", "Chen",
        "Wang", "Tanaka", "Sato", "Kim", "Nguyen", "Patel", "Khan", "Murphy", "Kelly", "D'Angelo", "Smith-Jones",
        "Andersson", "Jensen", "Silva", "dos Santos", "Lefebvre", "Fischer", "Weber", "Moreau", "Ferrari")
COMPANIES = ("Acme Ltd", "Globex GmbH", "Initech Inc", "Umbrella S.A.", "Stark Industries LLC", "ООО Ромашка",
             "Wayne Holdings", "トヨタ株式会社", "Hooli B.V.", "Vandelay AB")
COUNTRIES = {  # code: spelling per source (crm, erp, shop), postcode
    "GB": (("United Kingdom", "GB", "GBR"), "SW1A 1AA"), "US": (("United States", "US", "USA"), "02134"),
    "DE": (("Deutschland", "DE", "DEU"), "10115"), "FR": (("France", "FR", "FRA"), "75001"),
    "ES": (("España", "ES", "ESP"), "28001"), "NL": (("Nederland", "NL", "NLD"), "1012AB"),
    "IE": (("Éire", "IE", "IRL"), "D02X285"), "RU": (("Россия", "RU", "RUS"), "101000"),
}
SOURCES = ("crm", "erp", "shop")
ROLE = ("info", "sales", "office")
DOMAINS = ("example.com", "mail.example.org", "Example.co.uk", "beispiel.de", "exemple.fr", "пример.рф")


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` canonical records, ~2.5 per customer, as three sources would write them."""
    rng = np.random.default_rng(seed)
    people = max(rows * 2 // 5, 1)
    who = rng.integers(0, people, rows)
    source = rng.integers(0, 3, rows)
    pick = lambda options, n: np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]  # noqa: E731
    codes = list(COUNTRIES)
    country_of = rng.integers(0, len(codes), people)[who]
    first, last = pick(FIRST, people)[who], pick(LAST, people)[who]
    company = np.where(rng.random(people) < 0.05, pick(COMPANIES, people), None)[who]

    country = np.asarray(codes, dtype=object)[country_of]
    meta = {c: phonenumbers.PhoneMetadata.metadata_for_region(c) for c in codes}
    calling = pd.Series([str(meta[c].country_code) for c in country])
    trunk = pd.Series([meta[c].national_prefix or "" for c in country])

    def numbers(kind: phonenumbers.PhoneNumberType) -> pd.Series:
        # the country's example number with the last five digits the customer's own
        stem = pd.Series([str(phonenumbers.example_number_for_type(c, kind).national_number)[:-5] for c in codes])
        own = pd.Series(rng.integers(0, 100_000, people)).astype(str).str.zfill(5)[who].to_numpy()
        return stem[country_of].reset_index(drop=True) + own

    mobile, fixed = numbers(phonenumbers.PhoneNumberType.MOBILE), numbers(phonenumbers.PhoneNumberType.FIXED_LINE)
    national = lambda n: trunk + n.str[:4] + " " + n.str[4:]  # noqa: E731
    international = lambda n: "+" + calling + " " + n  # noqa: E731
    written = {0: national, 1: international, 2: lambda n: (calling + n)}
    phone_lists = []
    for s in range(3):
        mask = source == s
        main = written[s](mobile)[mask]
        second = written[s](fixed)[mask]
        phone_lists.append(pd.Series([[a, b] if k % 2 else [a] for k, (a, b) in enumerate(zip(main, second))],
                                     index=np.flatnonzero(mask)))
    phones_col = pd.concat(phone_lists).sort_index().to_numpy()
    for i in np.flatnonzero(rng.random(rows) < 0.02):
        phones_col[i] = ["n/a", "12345"]

    # mailbox names are ASCII in practice, whatever the name's script
    local = (pd.Series(first).map(anyascii) + "." + pd.Series(last).map(anyascii)).str.lower().str.replace(
        r"[^a-z.]", "", regex=True)
    email = local + (who % 97).astype(str) + "@" + pick(DOMAINS, people)[who]
    email = email.where(rng.random(rows) > 0.08, pick(ROLE, rows) + "@" + pick(DOMAINS, rows))
    email = email.where(rng.random(rows) > 0.02, "ann@@example")
    email = email.where(source != 2, email.str.upper())

    born = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 365 * 65, people)[who], unit="D")
    birth = pd.Series(np.select(
        [source == 0, source == 1], [born.strftime("%d/%m/%Y"), born.strftime("%m/%d/%Y")],
        np.where(rng.random(rows) < 0.1, ((born - pd.Timestamp("1899-12-30")).days).astype(str),
                 born.strftime("%Y-%m-%d"))), dtype=object)
    noise = rng.random(rows)
    birth[noise < 0.03] = ""
    birth[(noise >= 0.03) & (noise < 0.04)] = "0000-00-00"
    birth[(noise >= 0.04) & (noise < 0.045)] = "1900-01-01"
    updated = (pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365 * 86400, rows), unit="s"))

    frame = pd.DataFrame({
        "record_key": [f"{SOURCES[s]}:{i}" for i, s in enumerate(source)],
        "source": np.asarray(SOURCES, dtype=object)[source], "source_id": np.arange(rows).astype(str),
        "first_name": np.where(source == 2, pd.Series(first).str.upper(), first),
        "last_name": np.where(source == 2, pd.Series(last).str.upper(), last),
        "organization_name": company, "emails": [[e] for e in email], "phones": phones_col,
        "street": (who % 300 + 1).astype(str) + pick((" High St", " MAIN ST.", " Hauptstr.", " rue de la Paix"), rows),
        "city": pick(("London", "BERLIN", "paris", "New York", "Madrid", "Москва"), rows),
        "postcode": [COUNTRIES[c][1] for c in country],
        "country": [COUNTRIES[c][0][s] for c, s in zip(country, source)],
        "birth_date": birth, "source_updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S"),
        "email_opt_in": pick(("Y", "N", "opt-in", "unsubscribed", "", "yes"), rows),
        "do_not_contact": pick(("", "N", "DNC", "0"), rows),
    })
    # the erp source exports one name field
    erp = source == 1
    full = frame["first_name"] + " " + frame["last_name"]
    frame["full_name"] = full.where(erp)
    frame.loc[erp, ["first_name", "last_name"]] = None
    return frame


OPT_IN = {**dict.fromkeys(consent._YES | consent._CONSENTS, True), **dict.fromkeys(consent._NO | consent._REFUSALS, False)}


def naive(records: pd.DataFrame, region: str) -> pd.DataFrame:
    """What a first version does: ``apply`` each library to each row, caching nothing."""

    def row(r: pd.Series) -> pd.Series:
        parts = names._parse_one(r["full_name"]) if isinstance(r["full_name"], str) else (None,) * 5
        first = r["first_name"] if isinstance(r["first_name"], str) else parts[1]
        last = r["last_name"] if isinstance(r["last_name"], str) else parts[3]
        country = addresses._country_one(r["country"]) if r["country"] else None
        birth = None
        if r["birth_date"]:
            try:
                birth = dateparser.parse(r["birth_date"], dayfirst=r["source"] != "erp").date().isoformat()
            except (ValueError, OverflowError):
                birth = None
        return pd.Series({
            "first_name": first and names._proper_case_one(first, False),
            "last_name": last and names._proper_case_one(last, False),
            "country": country,
            "phones": [p for p in (phones._parse_one(p, country or region) for p in r["phones"]) if p],
            "emails": [e for e in map(emails._normalise_one, r["emails"]) if e],
            "birth_date": birth,
            "updated": dateparser.isoparse(r["source_updated_at"]).isoformat(),
            "email_opt_in": OPT_IN.get(str(r["email_opt_in"]).strip().lower()),
        })

    return records.apply(row, axis=1)


def _cpu_seconds() -> float:
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--rows", type=int, default=1_000_000)
    args.add_argument("--runs", type=int, default=3)
    args.add_argument("--naive-rows", type=int, default=100_000)
    opts = args.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pandas {pd.__version__}")
    started = time.perf_counter()
    records = generate(opts.rows)
    print(f"generated {len(records):,} rows in {time.perf_counter() - started:.1f} s")
    sample = records.sample(min(opts.naive_rows, len(records)), random_state=1)

    fast, slow = [], []
    for run in range(opts.runs):
        # CPU seconds of this process and its workers: what the work costs whatever else runs
        cpu = _cpu_seconds()
        started = time.perf_counter()
        out = standardise(records, default_region="GB")
        seconds = time.perf_counter() - started
        fast.append(len(records) / seconds)
        print(f"run {run + 1}: standardise {len(records):,} rows in {seconds:.1f} s = {fast[-1]:,.0f} rows/s "
              f"({len(out.flags):,} flags; {_cpu_seconds() - cpu:.1f} CPU s; load average {os.getloadavg()[0]:.1f})")
        started = time.perf_counter()
        naive(sample, "GB")
        seconds = time.perf_counter() - started
        slow.append(len(sample) / seconds)
        print(f"run {run + 1}: naive apply {len(sample):,} rows in {seconds:.1f} s = {slow[-1]:,.0f} rows/s")
    fast_median, slow_median = statistics.median(fast), statistics.median(slow)
    print(f"median standardise: {fast_median:,.0f} rows/s ({len(records) / fast_median:.1f} s for {len(records):,} rows)")
    print(f"median naive apply: {slow_median:,.0f} rows/s ({len(records) / slow_median:.0f} s for {len(records):,} rows)")
    print(f"ratio: {fast_median / slow_median:.1f}x")


if __name__ == "__main__":
    main()
