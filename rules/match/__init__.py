"""Matching: blocking, comparisons, an unsupervised Fellegi-Sunter model, clustering, explanations.

Public entry points: :class:`MatchSettings`, :func:`link` (returns a :class:`MatchResult`),
:func:`explain`, :func:`blocking_report`, :func:`score_partition` (the engine seam) and
:func:`dedupe_csv` (quick mode for one file). docs/matching.md tells how it works.
"""

from __future__ import annotations

from rules.match.blocking import blocking_report
from rules.match.dedupe import dedupe_csv, default_settings
from rules.match.explain import explain, waterfall_text
from rules.match.pipeline import MatchResult, link
from rules.match.scoring import pair_frame, prepare, score_partition
from rules.match.settings import MatchSettings

__all__ = [
    "MatchResult",
    "MatchSettings",
    "blocking_report",
    "dedupe_csv",
    "default_settings",
    "explain",
    "link",
    "pair_frame",
    "prepare",
    "score_partition",
    "waterfall_text",
]
