"""Shared fixtures: the hand-made catalogue (tests/catalogue.py) as frames and as a dataset directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import catalogue


@pytest.fixture
def catalogue_dir(tmp_path: Path) -> Path:
    """The catalogue written as a dataset directory (GeoPackage + csv)."""
    return catalogue.write_dataset(tmp_path / "dataset")
