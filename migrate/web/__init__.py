"""The review app: a local web page where data stewards work the review queue."""

from __future__ import annotations
