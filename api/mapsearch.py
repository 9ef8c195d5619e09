"""The map's search box on a province's overview: the service finds the rows (``search.json?q=``).

A park's page loads its whole search index (a few thousand rows) and searches it in the browser. A
province's index is 130 MB at 1M parcels; there the page sends what is typed and the service answers the
first rows that match, in the index's order, as the page itself would find them: the text in a parcel
code, an enterprise name or a USCC, ignoring case. The rows are those of the run's columnar copy
(:attr:`api.rundata.RunData.search_rows`, one JSON text per parcel), scanned with RE2 in slices until
enough are found (a whole province without a hit: 0.16 s).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEARCH_LIMIT_MAX = 50
SCAN_ROWS = 65_536
_RE2_META = set("\\.+*?()|[]{}^$")


def search_pattern(text: str) -> str:
    """An RE2 pattern that finds ``text`` (ignoring case) in one of the three texts that start a row of the
    search index (``["code","names","usccs",west,south,east,north]``), never in its numbers.

    >>> search_pattern('a.b"')
    '(?i)^\\\\[(?:"[^"]*",){0,2}"[^"]*a\\\\.b\\\\\\\\"'
    """
    inner = json.dumps(text, ensure_ascii=False)[1:-1]  # as the row's JSON writes it (quotes escaped)
    literal = "".join("\\" + c if c in _RE2_META else c for c in inner)
    return '(?i)^\\[(?:"[^"]*",){0,2}"[^"]*' + literal


def find_rows(rows: pa.Array, text: str, limit: int, positions: np.ndarray | None = None) -> list[bytes]:
    """The first ``limit`` rows (of ``positions``, ascending, when given) whose texts hold ``text``."""
    pattern = search_pattern(text)
    total = len(rows) if positions is None else len(positions)
    found: list[bytes] = []
    for start in range(0, total, SCAN_ROWS):
        stop = min(start + SCAN_ROWS, total)
        part = rows.slice(start, stop - start) if positions is None else rows.take(pa.array(positions[start:stop]))
        hits = pc.indices_nonzero(pc.match_substring_regex(part.cast(pa.large_string()), pattern=pattern))
        found += [bytes(v) for v in part.take(hits).to_pylist()[: limit - len(found)]]
        if len(found) >= limit:
            break
    return found


def matching(index: list[list[object]], text: str, limit: int) -> list[list[object]]:
    """The rows of a search index (made in memory) the page would find: ``text`` in one of the three texts."""
    q = text.strip().lower()
    return [r for r in index if any(q in str(v).lower() for v in r[:3])][:limit]
