"""``geo-eval serve``, ``geo-eval runs`` and ``geo-eval users``, as an administrator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import catalogue
import httpx
import pytest
from serving import serving
from typer.testing import CliRunner

from geo_eval.cli import app
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import open_store

runner = CliRunner()
SECRET = "k" * 48


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("cli")
    ds = catalogue.write_dataset(base / "dataset")
    run(ds, load_scheme("huaian-2024"), base / "out")
    return base / "out"


def invoke(*args: str, data_dir: Path, env: dict[str, str] | None = None):
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)], env=env)


def test_runs_add_and_list(out_dir, tmp_path):
    data = tmp_path / "data"
    r = invoke("runs", "add", str(out_dir), data_dir=data)
    assert r.exit_code == 0, r.output
    run_id = r.output.strip().splitlines()[-1]
    assert run_id.startswith("2025-huaian-2024-")
    assert open_store(data).latest_run().run_id == run_id
    r = invoke("runs", "list", data_dir=data)
    assert r.exit_code == 0 and "2025" in r.output
    r = invoke("runs", "add", str(tmp_path), data_dir=data)
    assert r.exit_code == 2 and "manifest.json" in r.output


def test_runs_add_reads_the_data_dir_from_the_environment(out_dir, tmp_path):
    data = tmp_path / "env-data"
    r = runner.invoke(app, ["runs", "add", str(out_dir), "--no-tiles"], env={"GEO_EVAL_DATA_DIR": str(data)})
    assert r.exit_code == 0, r.output
    assert len(open_store(data).list_runs()) == 1


def test_users_add_prints_the_token_as_its_last_line(tmp_path):
    data = tmp_path / "data"
    r = invoke("users", "add", "海滨管委会", "--role", "committee", "--park", "甲园", "--park", "乙园", data_dir=data)
    assert r.exit_code == 0, r.output
    token = r.output.rstrip("\n").splitlines()[-1]
    store = open_store(data)
    user = store.authenticate(token)
    assert user is not None and user.name == "海滨管委会" and user.parks == ("甲园", "乙园")
    assert token not in r.output.rstrip("\n").splitlines()[0]
    for role in ("reviewer", "admin"):
        r = invoke("users", "add", role, "--role", role, data_dir=data)
        assert r.exit_code == 0 and store.authenticate(r.output.splitlines()[-1]).role == role
    r = invoke("users", "list", data_dir=data)
    assert r.exit_code == 0 and "园区管委会" in r.output and token not in r.output


def test_users_add_refusals(tmp_path):
    data = tmp_path / "data"
    assert invoke("users", "add", "a", "--role", "committee", data_dir=data).exit_code == 2
    assert invoke("users", "add", "a", "--role", "reviewer", "--park", "甲园", data_dir=data).exit_code == 2
    assert invoke("users", "add", "a", "--role", "root", data_dir=data).exit_code != 0
    assert invoke("users", "add", "a", "--role", "admin", data_dir=data).exit_code == 0
    r = invoke("users", "add", "a", "--role", "admin", data_dir=data)
    assert r.exit_code == 2 and "已存在" in r.output
    r = invoke("users", "add", "a", "--role", "reviewer", "--replace", data_dir=data)
    assert r.exit_code == 0 and open_store(data).authenticate(r.output.splitlines()[-1]).role == "reviewer"


def test_users_token_and_remove(tmp_path):
    data = tmp_path / "data"
    old = invoke("users", "add", "a", "--role", "admin", data_dir=data).output.splitlines()[-1]
    r = invoke("users", "token", "a", data_dir=data)
    assert r.exit_code == 0
    new = r.output.splitlines()[-1]
    store = open_store(data)
    assert store.authenticate(old) is None and store.authenticate(new).name == "a"
    assert invoke("users", "remove", "a", data_dir=data).exit_code == 0
    assert store.authenticate(new) is None
    assert invoke("users", "remove", "a", data_dir=data).exit_code == 2
    assert invoke("users", "token", "a", data_dir=data).exit_code == 2


def test_serve_refuses_a_placeholder_secret(tmp_path):
    env = {"GEO_EVAL_SECRET_KEY": "changethis", "GEO_EVAL_DEMO": "0"}
    r = invoke("serve", "--port", "1", data_dir=tmp_path, env=env)
    assert r.exit_code == 2
    assert "GEO_EVAL_SECRET_KEY" in r.output and "拒绝启动" in r.output


def test_serve_answers_over_http(out_dir, tmp_path):
    data = tmp_path / "data"
    assert invoke("runs", "add", str(out_dir), "--no-tiles", data_dir=data).exit_code == 0
    token = invoke("users", "add", "rev", "--role", "reviewer", data_dir=data).output.splitlines()[-1]
    env = {**os.environ, "GEO_EVAL_DATA_DIR": str(data), "GEO_EVAL_SECRET_KEY": SECRET, "GEO_EVAL_DEMO": "0"}
    log = tmp_path / "serve.log"
    with serving(env, log, args=["--log-level", "info"]) as base:
        assert httpx.get(f"{base}/api/rankings").status_code == 401
        r = httpx.get(f"{base}/api/rankings", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["total"] == 9
    output = log.read_text()
    assert token not in output and SECRET not in output  # secrets never logged
    assert "GET /api/rankings" in output


def test_the_library_never_imports_fastapi():
    code = (
        "import sys, geo_eval, geo_eval.storage, geo_eval.cli, geo_eval.io.run\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
