"""Consent flags (opt-in, opt-out, do-not-contact) to booleans."""

from __future__ import annotations

import pandas as pd

from rules.rule import blank_to_na, rule

_TRUE = {"1", "Y", "YES", "TRUE", "T", "OPT-IN", "OPTIN", "OPTED IN", "SUBSCRIBED", "X", "JA", "OUI", "SI"}
_FALSE = {"0", "N", "NO", "FALSE", "F", "OPT-OUT", "OPTOUT", "OPTED OUT", "UNSUBSCRIBED", "NEIN", "NON"}


@rule("CN01", "consent.boolean")
def to_bool(values: pd.Series) -> pd.Series:
    """Yes/no spellings to a nullable boolean; anything else is missing.

    Example:
        >>> to_bool(pd.Series(["Yes", "opt-out", ""])).tolist()
        [True, False, <NA>]
    """
    s = blank_to_na(values.astype("object").map(lambda v: str(v) if v is not None and v == v else None))
    upper = s.str.upper()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[upper.isin(_TRUE).fillna(False)] = True
    out[upper.isin(_FALSE).fillna(False)] = False
    return out
