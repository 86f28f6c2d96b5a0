"""Phone numbers to E.164 with phonenumbers."""

from __future__ import annotations

import phonenumbers
import pandas as pd

from rules.rule import blank_to_na, by_distinct, rule


def _parse(value: str, region: str | None) -> tuple[str | None, bool]:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_valid_number(number):
        return None, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


@rule("PH01", "phones.e164")
def to_e164(values: pd.Series, default_region: str | None = None) -> pd.DataFrame:
    """Format phone numbers as E.164; numbers without a country code take ``default_region``.

    Returns columns ``phone`` (E.164 or missing) and ``valid`` (False where a value was given
    but is not a valid number).

    Example:
        >>> to_e164(pd.Series(["020 7946 0018"]), "GB")["phone"].tolist()
        ['+442079460018']
    """
    cleaned = blank_to_na(values)
    parsed = by_distinct(cleaned, lambda v: _parse(str(v), default_region))
    phone = parsed.map(lambda t: t[0] if isinstance(t, tuple) else None)
    valid = parsed.map(lambda t: t[1] if isinstance(t, tuple) else True).astype(bool)
    return pd.DataFrame({"phone": phone, "valid": valid}, index=values.index)
