"""E-mail addresses: syntax check and normalisation with email-validator (no DNS)."""

from __future__ import annotations

import re
from functools import cache

import pandas as pd
from email_validator import EmailNotValidError, validate_email

from rules.rule import map_text, reason_where, rule

# A plain ASCII dot-atom local part: email-validator accepts it whatever the domain, so
# for those the (slow, IDNA) domain check runs once per domain instead of per address.
_PLAIN_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_LENGTH = 254

#: Local parts of shared mailboxes rather than a person's.
ROLE_LOCAL_PARTS = frozenset({
    "info", "sales", "admin", "administrator", "support", "contact", "office", "hello", "enquiries",
    "enquiry", "inquiries", "help", "helpdesk", "billing", "accounts", "accounting", "invoices", "marketing",
    "noreply", "no-reply", "donotreply", "postmaster", "webmaster", "hostmaster", "abuse", "team", "jobs",
    "careers", "hr", "service", "customerservice", "mail", "news", "newsletter", "orders", "reception",
    "press", "media", "privacy", "security", "legal", "finance", "kontakt", "vertrieb", "buchhaltung",
    "contacto", "ventas", "bureau", "secretariat", "general",
})


def _normalise_one(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@cache
def _domain_one(domain: str) -> str | None:
    """The normalised domain, checked as email-validator checks it (a probe local part)."""
    email = _normalise_one("x@" + domain)
    return email[2:] if email else None


def _normalise_fast(address: str) -> str | None:
    """email-validator's verdict, with the (slow, IDNA) domain check once per domain.

    A plain ASCII dot-atom local part is valid whatever the domain, so only the domain
    needs the library; any other local part takes the library's full path.
    """
    lowered = address.lower()
    local, at, domain = lowered.rpartition("@")
    if not (at and _PLAIN_LOCAL.fullmatch(local)):
        return _normalise_one(address)
    normalised = _domain_one(domain)
    email = f"{local}@{normalised}" if normalised else None
    return email if email and len(email) <= _MAX_LENGTH else None


@rule("EM01", "emails.normalise")
def normalise_emails(values: pd.Series) -> pd.DataFrame:
    """Check syntax and normalise (trimmed, lower case, Unicode NFC) e-mail addresses.

    Returns columns ``email`` and ``reason`` (``invalid_email`` where a value was given but
    is no address). email-validator runs once per distinct address, and for plain ASCII
    local parts only once per domain. No DNS.

    Example:
        >>> normalise_emails(pd.Series([" Ann.Lee@Example.COM ", "ann@@x", "N/A"])).values.tolist()
        [['ann.lee@example.com', None], [None, 'invalid_email'], [None, None]]
    """
    given = map_text(values.astype(object), collapse=False)
    email = map_text(given, _normalise_fast)
    return pd.DataFrame({"email": email, "reason": reason_where(given.notna() & email.isna(), "invalid_email")})


@rule("EM02", "emails.role")
def is_role_email(values: pd.Series) -> pd.Series:
    """True where an address is a shared role mailbox (info@, sales@, noreply@...).

    Role addresses are kept but flagged: they are poor evidence that two records are the
    same person.

    Example:
        >>> is_role_email(pd.Series(["info@acme.de", "Sales+eu@acme.de", "ann@acme.de", None])).tolist()
        [True, True, False, False]
    """
    return map_text(values, _is_role_one).eq(True)


def _is_role_one(address: str) -> bool:
    local = address.lower().partition("@")[0]
    return "@" in address and local.partition("+")[0] in ROLE_LOCAL_PARTS
