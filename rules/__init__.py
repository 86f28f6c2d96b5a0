"""Rules: standardisation, validation, matching and survivorship.

Public entry points: :func:`standardise`, :func:`validate`, :func:`survive`.
"""

from __future__ import annotations

from rules.standardise import Standardised, standardise
from rules.survive import Survived, survive
from rules.validate import Validated, validate

__all__ = ["Standardised", "Survived", "Validated", "standardise", "survive", "validate"]
