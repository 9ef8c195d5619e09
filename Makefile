# geo-eval — the two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
SCHEME ?= lianyungang

.PHONY: install demo test lint format typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/geo-eval evaluate sample_parcels/2024 --scheme $(SCHEME) --out $(OUT)/2024 --overwrite
	$(BIN)/geo-eval evaluate sample_parcels/2025 --scheme $(SCHEME) --out $(OUT)/2025 --previous $(OUT)/2024 --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check geo_eval api tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format geo_eval api tests bench
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench.run_bench

clean:
	rm -rf $(OUT) bench/data bench/out .pytest_cache .ruff_cache .mypy_cache
