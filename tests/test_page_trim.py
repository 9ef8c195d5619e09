"""A worker gives its mapped file pages back to the page cache above its memory budget (api/pagetrim.py).

Checked on real mappings of this process (``/proc/self/smaps``): the pages of the files a worker maps
(pyarrow's private maps under the copies' folder, shared maps anywhere) leave its resident set and the
data still reads the same; a library's private mapping elsewhere is left alone; the service's trimmer
gives the run copy's pages back once its worker is above ``GEO_EVAL_WORKER_RSS_MB`` and answers the
same afterwards.
"""

from __future__ import annotations

import mmap
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import RUN_COPIES, create_app
from api.pagetrim import PageTrimmer, file_maps, give_back_mapped_pages, resident_bytes
from api.settings import Settings
from geo_eval.storage import open_store, run_record_from_out_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")

MB = 1024 * 1024


def mapped_rss(prefix: str) -> int:
    """Resident bytes of this process's mappings of files whose path starts with ``prefix``."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:  # a mapping's header line
            inside = len(head) == 6 and head[5].startswith(prefix)
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1]) * 1024
    return total


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "copies" / "values.arrow"
    path.parent.mkdir()
    path.write_bytes(np.arange(8 * MB, dtype=np.uint32).tobytes())  # 32 MB
    return path


def test_mapped_pages_leave_the_resident_set_and_read_the_same(data_file: Path) -> None:
    root = str(data_file.parent.resolve()) + os.sep
    private = pa.memory_map(str(data_file)).read_buffer()  # pyarrow maps privately (r--p)
    values = np.frombuffer(private, dtype=np.uint32)
    with data_file.open("rb") as fh:
        shared = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # r--s
    shared_values = np.frombuffer(shared, dtype=np.uint32)
    before = int(values.sum(dtype=np.uint64)) + int(shared_values.sum(dtype=np.uint64))
    assert mapped_rss(str(data_file)) >= 60 * MB  # both maps of the 32 MB file resident
    assert [p for _, _, p in file_maps((root,)) if p == str(data_file.resolve())] == [str(data_file.resolve())] * 2

    assert give_back_mapped_pages((root,)) >= 64 * MB
    assert mapped_rss(str(data_file)) < MB
    assert int(values.sum(dtype=np.uint64)) + int(shared_values.sum(dtype=np.uint64)) == before
    assert before == 2 * sum(range(8 * MB))
    del shared_values
    shared.close()


def test_a_private_mapping_outside_the_roots_is_left_alone(data_file: Path, tmp_path: Path) -> None:
    values = np.frombuffer(pa.memory_map(str(data_file)).read_buffer(), dtype=np.uint32)
    assert int(values[::1024].sum()) > 0  # one value per page: every page resident
    give_back_mapped_pages((str(tmp_path / "elsewhere") + os.sep,))
    assert mapped_rss(str(data_file)) >= 30 * MB


def test_the_trimmer_acts_only_above_its_budget(data_file: Path) -> None:
    root = str(data_file.parent.resolve()) + os.sep
    values = np.frombuffer(pa.memory_map(str(data_file)).read_buffer(), dtype=np.uint32)
    assert int(values[::1024].sum()) > 0
    roomy = PageTrimmer(resident_bytes() + 512 * MB, roots=(root,))
    assert not roomy.check() and roomy.trims == 0
    assert mapped_rss(str(data_file)) >= 30 * MB
    assert not PageTrimmer(0, roots=(root,)).check()  # 0: off
    tight = PageTrimmer(1, roots=(root,))
    assert tight.check() and tight.trims == 1
    assert mapped_rss(str(data_file)) < MB
    assert int(values[::1024].sum()) > 0
    assert not tight.check() and tight.trims == 1  # not again within min_gap_s (5 s)
    assert mapped_rss(str(data_file)) >= 30 * MB
    tight.min_gap_s = 0.0
    assert tight.check() and tight.trims == 2
    assert mapped_rss(str(data_file)) < MB


def test_the_service_gives_a_run_copys_pages_back_and_answers_the_same(sample_runs, tmp_path: Path) -> None:
    out = tmp_path / "2025"
    shutil.copytree(sample_runs[2025], out)
    data_dir = tmp_path / "data"
    store = open_store(data_dir)
    store.add_run(run_record_from_out_dir(out), actor="test")
    token = store.add_user("r1", "reviewer")[1]
    store.close()
    copies = str((data_dir / RUN_COPIES).resolve()) + os.sep
    app = create_app(Settings(data_dir=data_dir, secret_key="t" * 48, worker_rss_mb=1))
    app.state.page_trimmer.min_gap_s = 0.0  # at every check (tested above: at most every 5 s by default)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        trimmer = app.state.page_trimmer
        first = c.get("/api/parcels?limit=500")
        assert first.status_code == 200 and len(first.json()["features"]) == 500
        deadline = time.monotonic() + 10
        while trimmer.trims == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trimmer.trims > 0  # the test process is far above 1 MB
        trimmed = trimmer.trims
        while trimmer.trims == trimmed and time.monotonic() < deadline:  # one whole pass after the answer
            time.sleep(0.05)
        assert any(p.startswith(copies) for _, _, p in file_maps((copies,)))  # the copy is mapped …
        assert mapped_rss(copies) < 64 * 1024  # … and (all but a page or so) not resident
        again = c.get("/api/parcels?limit=500")
        assert again.json() == first.json()
    assert trimmer._thread is None  # stopped with the app
    trimmer.start()  # and can start again (another lifespan of the same app)
    assert trimmer._thread is not None and trimmer._thread.is_alive()
    trimmer.stop()
