"""The generated tables of docs/data-contract.md and docs/schemes.md match the code, and every problem code
raised in geo_eval/ is documented (``docs/_gen_contract.py --check``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_data_contract_and_scheme_docs_match_the_code():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "_gen_contract.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
