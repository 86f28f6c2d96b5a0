"""Person and organisation names."""

from __future__ import annotations

import pandas as pd

from rules.rule import blank_to_na, rule


@rule("NM01", "names.case")
def proper_case(values: pd.Series) -> pd.Series:
    """Trim, collapse inner spaces, and title-case names typed all upper or all lower.

    Names already in mixed case are left alone: "McDonald" and "van der Berg" were typed
    that way on purpose.

    Example:
        >>> proper_case(pd.Series(["  ANNE  MARIE ", "McDonald"])).tolist()
        ['Anne Marie', 'McDonald']
    """
    s = blank_to_na(values).str.replace(r"\s+", " ", regex=True)
    one_case = (s == s.str.upper()) | (s == s.str.lower())
    return s.where(~one_case.fillna(False), s.str.title())
