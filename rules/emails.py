"""E-mail addresses: syntax check and normalisation with email-validator (no DNS)."""

from __future__ import annotations

import pandas as pd
from email_validator import EmailNotValidError, validate_email

from rules.rule import blank_to_na, by_distinct, rule


def _normalise(value: str) -> tuple[str | None, bool]:
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return None, False
    return info.normalized.lower(), True


@rule("EM01", "emails.normalise")
def normalise_emails(values: pd.Series) -> pd.DataFrame:
    """Validate syntax and normalise (lower case, trimmed) e-mail addresses.

    Returns columns ``email`` (normalised or missing) and ``valid``.

    Example:
        >>> normalise_emails(pd.Series([" Ann.Lee@Example.COM "]))["email"].tolist()
        ['ann.lee@example.com']
    """
    cleaned = blank_to_na(values)
    parsed = by_distinct(cleaned, lambda v: _normalise(str(v)))
    email = parsed.map(lambda t: t[0] if isinstance(t, tuple) else None)
    valid = parsed.map(lambda t: t[1] if isinstance(t, tuple) else True).astype(bool)
    return pd.DataFrame({"email": email, "valid": valid}, index=values.index)
