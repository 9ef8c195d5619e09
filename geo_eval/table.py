"""A loaded input table, before validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Table:
    """An input table with canonical column names."""

    name: str  # parcels, enterprises, leases
    file: str  # as shown to users
    frame: pd.DataFrame  # canonical columns + source_row
    headers: dict[str, str] = field(default_factory=dict)  # canonical -> original header
    factors: dict[str, float] = field(default_factory=dict)  # canonical -> unit factor
    unknown: list[str] = field(default_factory=list)  # headers not in the contract
    unit_notes: dict[str, str] = field(default_factory=dict)  # canonical -> "元 → 万元 ×0.0001"
