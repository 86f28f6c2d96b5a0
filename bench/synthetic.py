"""A seeded generator of messy customer records with known truth, for matching tests and benchmarks.

Each person (an *entity*) appears one to five times across the sources ``crm``, ``erp`` and
``mainframe``, with the errors legacy systems really hold: typos, nicknames, first and last name
swapped, missing values, day and month transposed, a phone stored under the wrong country code,
street abbreviations, and names typed in their native script in one system and transliterated in
another. Hard negatives are planted too: household members who share surname, address and
landline, and parents and children who share a full name and an address.

:func:`generate` returns standardised canonical records plus an ``entity_id`` truth column;
:func:`to_contacts_csv` turns them back into a raw contacts export (formatted phones, dates as
people type them) for the quick ``dedupe`` mode.

Example:
    >>> df = generate(1_000, seed=1)
    >>> len(df), df["record_key"].is_unique, 300 < df["entity_id"].nunique() < 1_000
    (1000, True, True)
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd

#: First names with their nicknames (the matcher ships its own, larger table).
_FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "James": ("Jim", "Jimmy"), "John": ("Jack", "Johnny"), "Robert": ("Bob", "Rob", "Bobby"),
    "Michael": ("Mike", "Mick"), "William": ("Bill", "Will", "Liam"), "David": ("Dave",),
    "Richard": ("Rick", "Dick"), "Joseph": ("Joe",), "Thomas": ("Tom", "Tommy"),
    "Charles": ("Charlie", "Chuck"), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Andrew": ("Andy", "Drew"), "Edward": ("Ed", "Ted"),
    "Steven": ("Steve",), "Kenneth": ("Ken",), "Joshua": ("Josh",), "Timothy": ("Tim",),
    "Patrick": ("Pat",), "Samuel": ("Sam",), "Benjamin": ("Ben",), "Alexander": ("Alex",),
    "Nicholas": ("Nick",), "Jonathan": ("Jon",), "Peter": ("Pete",), "Harry": (), "Oliver": ("Ollie",),
    "George": (), "Jacob": ("Jake",), "Noah": (), "Mohammed": (), "Lucas": (), "Oscar": (),
    "Mary": ("Molly",), "Patricia": ("Pat", "Trish"), "Jennifer": ("Jen", "Jenny"),
    "Elizabeth": ("Liz", "Beth", "Betty"), "Linda": (), "Barbara": ("Barb",), "Susan": ("Sue",),
    "Jessica": ("Jess",), "Sarah": (), "Karen": (), "Margaret": ("Maggie", "Peggy"),
    "Catherine": ("Kate", "Cathy"), "Rebecca": ("Becky",), "Victoria": ("Vicky",),
    "Deborah": ("Debbie",), "Samantha": ("Sam",), "Alexandra": ("Alex",), "Katherine": ("Kathy", "Katie"),
    "Emily": (), "Olivia": ("Liv",), "Amelia": ("Millie",), "Isla": (), "Ava": (), "Sophie": (),
    "Charlotte": ("Lottie",), "Grace": (), "Chloe": (), "Zoe": (), "Hannah": (), "Lucy": (),
    "Anne": ("Annie",), "Helen": (), "Claire": (), "Laura": (), "Emma": (), "Ruth": (),
    "Søren": (), "José": ("Pepe",), "Zoë": (), "François": (), "Jürgen": (), "Anaïs": (), "Björn": (),
    "Priya": (), "Aisha": (), "Wei": (), "Yuki": (), "Ngozi": (), "Siobhán": (), "Małgorzata": (),
}

_SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
    "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose", "Davis", "Rodriguez",
    "Cox", "Alexander", "Garden", "Campbell", "Johnston", "Moore", "Smyth", "O'Neill", "Doherty",
    "Stewart", "Quinn", "Murphy", "Graham", "McLaughlin", "Hamilton", "Murray", "Hughes", "Robertson",
    "Thomson", "Scott", "Macdonald", "Reid", "Clark", "Ross", "Young", "Watson", "Paterson", "Morrison",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Øster", "Nielsen", "Jensen", "García",
    "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Nguyễn", "Kowalski", "Nowak", "Novák",
)

#: People whose name one system holds in its native script and another transliterated
#: (each with the spellings Western systems typically used).
_NATIVE_NAMES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Дмитрий", "Иванов", ("Dmitry", "Dmitri", "Dmitriy"), ("Ivanov",)),
    ("Александр", "Смирнов", ("Alexander", "Aleksandr"), ("Smirnov",)),
    ("Сергей", "Кузнецов", ("Sergey", "Sergei"), ("Kuznetsov",)),
    ("Наталья", "Попова", ("Natalya", "Natalia"), ("Popova",)),
    ("Ольга", "Соколова", ("Olga",), ("Sokolova",)),
    ("Γιώργος", "Παπαδόπουλος", ("Giorgos", "Georgios"), ("Papadopoulos",)),
    ("Σοφία", "Οικονόμου", ("Sofia", "Sophia"), ("Oikonomou", "Economou")),
    ("Νίκος", "Γεωργίου", ("Nikos",), ("Georgiou",)),
    ("伟", "王", ("Wei",), ("Wang",)),
    ("秀英", "李", ("Xiuying",), ("Li", "Lee")),
    ("明", "张", ("Ming",), ("Zhang", "Chang")),
    ("Οδυσσέας", "Αντωνίου", ("Odysseas",), ("Antoniou",)),
)

_SYLLABLES = ("ab", "ber", "cal", "dor", "el", "fen", "gar", "hol", "ing", "jor", "kel", "lan", "mor",
              "nel", "or", "pen", "quin", "ros", "sel", "tor", "ul", "van", "wes", "yar", "zel", "ton",
              "ley", "wick", "ham", "by", "son", "field", "worth", "ridge")
_STREETS = ("High", "Station", "Main", "Park", "Church", "London", "Victoria", "Green", "Manor", "Mill",
            "Kings", "Queens", "New", "Grange", "School", "North", "South", "West", "Chester", "York",
            "Albert", "Windsor", "Oak", "Elm", "Cedar", "Meadow", "River", "Bridge", "Castle", "Forest")
_STREET_TYPES = (("Street", "St"), ("Road", "Rd"), ("Avenue", "Ave"), ("Lane", "Ln"), ("Close", "Cl"),
                 ("Drive", "Dr"), ("Way", "Way"), ("Gardens", "Gdns"))
_CITIES = ("London", "Birmingham", "Manchester", "Leeds", "Glasgow", "Sheffield", "Bradford", "Liverpool",
           "Edinburgh", "Bristol", "Cardiff", "Leicester", "Coventry", "Belfast", "Nottingham", "Newcastle",
           "Brighton", "Hull", "Plymouth", "Stoke", "Derby", "Southampton", "Portsmouth", "York", "Oxford",
           "Cambridge", "Reading", "Norwich", "Exeter", "Bath", "Aberdeen", "Dundee", "Swansea", "Luton")
_DOMAINS = ("gmail.com", "yahoo.co.uk", "hotmail.com", "outlook.com", "btinternet.com", "icloud.com",
            "aol.com", "live.co.uk", "sky.com", "protonmail.com")
_SOURCES = ("crm", "erp", "mainframe")

#: Share of records that carry each error (independently drawn).
ERROR_RATES: dict[str, float] = {
    "first_typo": 0.07, "last_typo": 0.06, "nickname": 0.12, "swap": 0.03, "first_missing": 0.03,
    "last_missing": 0.02, "email_missing": 0.30, "email_other_domain": 0.08, "email_typo": 0.04,
    "phone_missing": 0.30, "phone_country": 0.04, "phone_typo": 0.02, "dob_missing": 0.35,
    "dob_transposed": 0.04, "dob_typo": 0.03, "street_missing": 0.10, "street_abbrev": 0.25,
    "street_typo": 0.05, "postcode_missing": 0.06, "postcode_typo": 0.02, "city_missing": 0.10,
}


def generate(n_records: int, seed: int = 0) -> pd.DataFrame:
    """Standardised canonical records with an ``entity_id`` truth column.

    Args:
        n_records: How many records to produce (exactly).
        seed: Everything is drawn from one seeded generator, so the same seed gives the same rows.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 3, 4, 5], p=[0.45, 0.30, 0.14, 0.07, 0.04], size=n_records)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_records)) + 1]
    sizes[-1] -= sizes.sum() - n_records
    people = _people(len(sizes), rng)
    entity = np.repeat(np.arange(len(sizes)), sizes)
    rec = people.iloc[entity].reset_index(drop=True)
    rec["entity_id"] = entity
    _corrupt(rec, rng)
    source = rng.choice(_SOURCES, size=n_records)
    out = pd.DataFrame({
        "record_key": [f"{s}:{i}" for s, i in zip(source, range(n_records))],
        "source": source,
        "source_id": np.arange(n_records).astype(str),
        "entity": "person",
        "first_name": rec["first_name"],
        "last_name": rec["last_name"],
        "organization_name": None,
        "emails": [[e] if isinstance(e, str) else [] for e in rec["email"]],
        "phones": [[p] if isinstance(p, str) else [] for p in rec["phone"]],
        "street": rec["street"],
        "city": rec["city"],
        "postcode": rec["postcode"],
        "country": "GB",
        "birth_date": rec["birth_date"],
        "identifiers": [{"tax_id": t} if isinstance(t, str) and s == "erp" else {}
                        for t, s in zip(rec["tax_id"], source)],
        "entity_id": rec["entity_id"],
    })
    text = ["first_name", "last_name", "street", "city", "postcode", "birth_date"]
    out[text] = out[text].astype("object").where(out[text].notna(), None)
    return out


def to_contacts_csv(records: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Turn canonical records into a raw contacts export, the way people type phones and dates."""
    rng = np.random.default_rng(seed)
    phone = records["phones"].map(lambda v: v[0] if v else "")
    style = rng.integers(0, 4, len(records))
    national = "0" + phone.str[3:]
    formatted = np.select(
        [style == 0, style == 1, style == 2],
        ["+44 " + phone.str[3:7] + " " + phone.str[7:], national.str[:5] + " " + national.str[5:],
         national.str[:5] + "-" + national.str[5:8] + "-" + national.str[8:]],
        national)
    dob = pd.to_datetime(records["birth_date"], errors="coerce")
    date_style = rng.integers(0, 3, len(records))
    dates = np.select([date_style == 0, date_style == 1],
                      [dob.dt.strftime("%Y-%m-%d"), dob.dt.strftime("%d/%m/%Y")], dob.dt.strftime("%d.%m.%Y"))
    return pd.DataFrame({
        "First Name": records["first_name"], "Last Name": records["last_name"],
        "E-mail Address": records["emails"].map(lambda v: v[0] if v else ""),
        "Mobile Phone": np.where(phone == "", "", formatted),
        "Birthday": pd.Series(dates, index=records.index).where(dob.notna(), ""),
        "Street": records["street"], "City": records["city"], "Postal Code": records["postcode"],
        "Country": "United Kingdom",
    })


def _people(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """One clean row per entity; some share a household or a full name with another entity."""
    firsts = np.array(list(_FIRST_NAMES), dtype=object)
    first = firsts[_zipf(rng, len(firsts), n, 0.6)]
    tail = np.array([a.title() + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", "s", "er")],
                    dtype=object)
    common = np.array(_SURNAMES, dtype=object)
    # Real surname counts: a few very common ones, then a long tail of rare ones.
    last = np.where(rng.random(n) < 0.45, common[_zipf(rng, len(common), n, 1.0)], tail[rng.integers(0, len(tail), n)])
    days = rng.integers(-20_000, 12_000, n)
    birth = (np.datetime64("1970-01-01") + days.astype("timedelta64[D]")).astype(str).astype(object)
    city_i = rng.integers(0, len(_CITIES), n)
    letters = np.array(list(string.ascii_uppercase))
    area = np.char.add(letters[city_i % 26], letters[(city_i * 7 + 3) % 26])
    postcode = (pd.Series(area) + pd.Series(rng.integers(1, 30, n)).astype(str) + " "
                + pd.Series(rng.integers(1, 10, n)).astype(str)
                + pd.Series(letters[rng.integers(0, 26, n)]) + pd.Series(letters[rng.integers(0, 26, n)]))
    st = rng.integers(0, len(_STREET_TYPES), n)
    names = np.array(_STREETS)[rng.integers(0, len(_STREETS), n)]
    street = (pd.Series(rng.integers(1, 300, n)).astype(str) + " " + pd.Series(names)
              + " " + pd.Series([_STREET_TYPES[i][0] for i in st]))
    people = pd.DataFrame({
        "first_name": first, "last_name": last, "birth_date": birth, "street": street,
        "city": np.array(_CITIES, dtype=object)[city_i], "postcode": postcode,
        "phone": "+447" + pd.Series(rng.integers(100_000_000, 999_999_999, n)).astype(str),
        "tax_id": np.where(rng.random(n) < 0.5, pd.Series(rng.integers(10**8, 10**9, n)).astype(str), None),
        "native": None, "latin": None,
    })
    _plant_hard_negatives(people, rng)
    native = rng.random(n) < 0.04
    pick = rng.integers(0, len(_NATIVE_NAMES), native.sum())
    people.loc[native, "native"] = [(_NATIVE_NAMES[i][0], _NATIVE_NAMES[i][1]) for i in pick]
    people.loc[native, "latin"] = [(_NATIVE_NAMES[i][2], _NATIVE_NAMES[i][3]) for i in pick]
    people.loc[native, "first_name"] = [_NATIVE_NAMES[i][2][0] for i in pick]
    people.loc[native, "last_name"] = [_NATIVE_NAMES[i][3][0] for i in pick]
    local_style = rng.integers(0, 3, n)
    base = (people["first_name"].map(_ascii_lower), people["last_name"].map(_ascii_lower))
    # A real mailbox belongs to one person: the number keeps "john.smith" from being shared.
    number = pd.Series(rng.integers(1, 10**5, n)).astype(str)
    local = np.select([local_style == 0, local_style == 1],
                      [base[0] + "." + base[1] + number, base[0].str[:1] + base[1] + number],
                      base[0] + base[1] + number)
    people["email"] = pd.Series(local) + "@" + np.array(_DOMAINS, dtype=object)[_zipf(rng, len(_DOMAINS), n, 1.0)]
    return people


def _plant_hard_negatives(people: pd.DataFrame, rng: np.random.Generator) -> None:
    """Make some entities share a household (surname, address, landline) or a full name and address."""
    n = len(people)
    shared = ["last_name", "street", "city", "postcode", "phone"]
    household = np.flatnonzero(rng.random(n) < 0.06)
    household = household[household > 0]
    people.loc[household, shared] = people.loc[household - 1, shared].to_numpy()
    junior = np.flatnonzero(rng.random(n) < 0.01)
    junior = junior[junior > 0]
    people.loc[junior, ["first_name", *shared[:-1]]] = people.loc[junior - 1, ["first_name", *shared[:-1]]].to_numpy()


def _corrupt(rec: pd.DataFrame, rng: np.random.Generator) -> None:
    """Apply the errors of :data:`ERROR_RATES` in place."""
    n = len(rec)
    hit = {k: rng.random(n) < p for k, p in ERROR_RATES.items()}
    native = rec["native"].notna().to_numpy()
    if native.any():
        # Half of a native-script person's records keep the native script; the rest use one of
        # the transliterations that person's other systems happened to choose.
        script = native & (rng.random(n) < 0.5)
        rec.loc[script, "first_name"] = rec.loc[script, "native"].map(lambda t: t[0])
        rec.loc[script, "last_name"] = rec.loc[script, "native"].map(lambda t: t[1])
        latin = native & ~script
        rec.loc[latin, "first_name"] = [str(rng.choice(t[0])) for t in rec.loc[latin, "latin"]]
        rec.loc[latin, "last_name"] = [str(rng.choice(t[1])) for t in rec.loc[latin, "latin"]]
    nick = hit["nickname"] & rec["first_name"].map(lambda f: bool(_FIRST_NAMES.get(f))).to_numpy()
    rec.loc[nick, "first_name"] = [str(rng.choice(_FIRST_NAMES[f])) for f in rec.loc[nick, "first_name"]]
    for col, key in (("first_name", "first_typo"), ("last_name", "last_typo"), ("street", "street_typo"),
                     ("postcode", "postcode_typo")):
        rec.loc[hit[key], col] = [_typo(v, rng) for v in rec.loc[hit[key], col]]
    swap = hit["swap"]
    rec.loc[swap, ["first_name", "last_name"]] = rec.loc[swap, ["last_name", "first_name"]].to_numpy()
    rec.loc[hit["street_abbrev"], "street"] = rec.loc[hit["street_abbrev"], "street"].map(_abbreviate)

    email = rec["email"].copy()
    other = hit["email_other_domain"]
    email[other] = email[other].str.split("@").str[0] + "@" + rng.choice(_DOMAINS, other.sum())
    email[hit["email_typo"]] = [_typo(v, rng) for v in email[hit["email_typo"]]]
    rec["email"] = email.mask(hit["email_missing"])

    phone = rec["phone"].copy()
    # A number saved without its country code and then read under the wrong default region.
    phone[hit["phone_country"]] = "+353" + phone[hit["phone_country"]].str[-9:]
    phone[hit["phone_typo"]] = [_digit_typo(v, rng) for v in phone[hit["phone_typo"]]]
    rec["phone"] = phone.mask(hit["phone_missing"])

    dob = rec["birth_date"].copy()
    day, month = dob.str[8:10], dob.str[5:7]
    transposable = hit["dob_transposed"] & (day.astype(int) <= 12).to_numpy() & (day != month).to_numpy()
    dob[transposable] = dob.str[:5][transposable] + day[transposable] + "-" + month[transposable]
    typo_day = ((day.astype(int) + rng.integers(1, 9, n)) % 28 + 1).astype(str).str.zfill(2)
    dob[hit["dob_typo"]] = dob.str[:8][hit["dob_typo"]] + typo_day[hit["dob_typo"]]
    rec["birth_date"] = dob.mask(hit["dob_missing"])

    for col, key in (("first_name", "first_missing"), ("last_name", "last_missing"), ("street", "street_missing"),
                     ("postcode", "postcode_missing"), ("city", "city_missing")):
        rec[col] = rec[col].mask(hit[key])


def _zipf(rng: np.random.Generator, k: int, n: int, a: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** a
    return rng.choice(k, size=n, p=weights / weights.sum())


def _typo(value: str, rng: np.random.Generator) -> str:
    """One keyboard slip: a character dropped, doubled, replaced, or two swapped."""
    if len(value) < 3:
        return value
    i = int(rng.integers(1, len(value) - 1))
    kind = int(rng.integers(0, 4))
    letter = str(rng.choice(list(string.ascii_lowercase)))
    if kind == 0:
        return value[:i] + value[i + 1:]
    if kind == 1:
        return value[:i] + letter + value[i:]
    if kind == 2:
        return value[:i] + letter + value[i + 1:]
    return value[:i - 1] + value[i] + value[i - 1] + value[i + 1:]


def _digit_typo(value: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(len(value) - 6, len(value)))
    return value[:i] + str((int(value[i]) + int(rng.integers(1, 9))) % 10) + value[i + 1:]


def _abbreviate(street: str) -> str:
    for long, short in _STREET_TYPES:
        if street.endswith(" " + long):
            return street[: -len(long)] + short
    return street


def _ascii_lower(value: str) -> str:
    from anyascii import anyascii

    return "".join(ch for ch in anyascii(value).lower() if ch.isalnum())
