"""Consent flags (opt-in, opt-out, do-not-contact) to booleans."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from rules.rule import blank_to_na, fold, on_distinct, reason_where, rule

#: What a consent column says when it is True.
Meaning = Literal["opt_in", "do_not_contact"]

# Plain yes/no in several languages: taken literally, whatever the column means.
_YES = {"1", "y", "yes", "true", "t", "x", "on", "ja", "j", "oui", "si", "sí", "sim", "да", "是", "はい", "예"}
_NO = {"0", "n", "no", "false", "f", "off", "nein", "non", "nao", "não", "нет", "否", "いいえ", "아니요"}
# Words that say which way the customer chose: their truth depends on the column.
_CONSENTS = {
    "opt-in", "optin", "opt in", "opted in", "opted-in", "subscribed", "consent", "consented", "granted",
    "allowed", "ok to contact", "may contact", "double opt-in", "soi", "doi",
}
_REFUSALS = {
    "opt-out", "optout", "opt out", "opted out", "opted-out", "unsubscribed", "do not contact",
    "do-not-contact", "dnc", "do not mail", "do not email", "no contact", "refused", "withdrawn",
    "revoked", "denied", "bounced", "blocked", "suppressed",
}


def _consent_distinct(values: pd.Series, meaning: Meaning) -> pd.DataFrame:
    texts = blank_to_na(values)
    words = texts.map(lambda t: " ".join(fold(t).replace("_", " ").split()), na_action="ignore")
    consent = words.isin(_CONSENTS)
    refusal = words.isin(_REFUSALS)
    # a consent word makes "opt-in" true and "do not contact" false, and the other way round
    agrees = consent if meaning == "opt_in" else refusal
    disagrees = refusal if meaning == "opt_in" else consent
    truth = pd.Series(pd.NA, index=values.index, dtype="boolean")
    truth[words.isin(_YES) | agrees] = True
    truth[words.isin(_NO) | disagrees] = False
    return pd.DataFrame({"value": truth.astype(object).where(truth.notna(), None),
                         "reason": reason_where(texts.notna() & truth.isna(), "invalid_consent")})


@rule("CN01", "consent.boolean")
def to_bool(values: pd.Series, meaning: Meaning = "opt_in") -> pd.DataFrame:
    """Consent spellings to booleans for a column that means ``opt_in`` or ``do_not_contact``.

    Yes/no in several languages is taken literally; "opt-out", "unsubscribed", "DNC" are
    False for an opt-in column and True for a do-not-contact one. Returns columns ``value``
    (None when unknown: never read missing consent as consent) and ``reason``
    (``invalid_consent`` where a value was given but says neither).

    Example:
        >>> to_bool(pd.Series(["Yes", "opt-out", "", "maybe"])).values.tolist()
        [[True, None], [False, None], [None, None], [None, 'invalid_consent']]
        >>> to_bool(pd.Series(["Unsubscribed", "N"]), meaning="do_not_contact")["value"].tolist()
        [True, False]
    """
    return on_distinct(values.astype(object), lambda u: _consent_distinct(u, meaning)).reindex(
        columns=["value", "reason"])
