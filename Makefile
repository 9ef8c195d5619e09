# geo-eval — the two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
SCHEME ?= lianyungang
# the service (geo-eval serve): its database and registered runs, and where it listens
export GEO_EVAL_DATA_DIR ?= $(OUT)/service
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_SERVE ?= 1
DEMO_PARK ?= 海滨高新技术产业园

.PHONY: install demo serve test lint format typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make demo`: evaluate the sample for 2024 and 2025, register both runs, put 2025 in publicity (公示中, from
# today for 14 days) with two example objections of 海滨高新技术产业园, make one demo user per role (printing
# their tokens), then serve at http://$(HOST):$(PORT)/ until Ctrl-C (DEMO_SERVE=0: no serving).
demo: $(STAMP)
	$(BIN)/geo-eval evaluate sample_parcels/2024 --scheme $(SCHEME) --out $(OUT)/2024 --overwrite
	$(BIN)/geo-eval evaluate sample_parcels/2025 --scheme $(SCHEME) --out $(OUT)/2025 --previous $(OUT)/2024 --overwrite
	$(BIN)/geo-eval runs add $(OUT)/2024
	$(BIN)/geo-eval runs add $(OUT)/2025
	$(BIN)/geo-eval runs status 2025 --to publicity --start $$(TZ=Asia/Shanghai date +%F) --end $$(TZ=Asia/Shanghai date -d '+13 days' +%F)
	$(BIN)/geo-eval objections add 2025 --if-absent --by demo-committee --uscc 91320700MA41UC2C28 --field registered_area_m2 \
	  --claimed 20000 --reason "部分土地已于2025年6月由政府收回，不动产权证书载明面积已变更为20000平方米（见变更登记证明）"
	$(BIN)/geo-eval objections add 2025 --if-absent --by demo-committee --uscc 913207993371043231 --field tax \
	  --claimed 420 --reason "2025年12月补缴入库的税款84.49万元未计入（见完税证明）"
	@echo "演示用户（数据目录 $(GEO_EVAL_DATA_DIR)；令牌每次 make demo 重新生成，只显示这一次）："
	@set -e; \
	for spec in "admin demo-admin" "reviewer demo-reviewer" "committee demo-committee"; do \
	  set -- $$spec; \
	  if [ "$$1" = committee ]; then park="--park=$(DEMO_PARK)"; else park=""; fi; \
	  token=$$($(BIN)/geo-eval users add "$$2" --role "$$1" $$park --replace | tail -n 1); \
	  printf '  %-10s %-15s %s\n' "$$1" "$$2" "$$token"; \
	done
	@echo "园区管委会 demo-committee 只能查看 $(DEMO_PARK)。浏览器登录：http://$(HOST):$(PORT)/login（用户名 + 令牌）；"
	@echo "脚本：curl -H 'Authorization: Bearer 令牌' http://$(HOST):$(PORT)/api/runs"
	@echo "年度评价报告：$(OUT)/2024/report.html、$(OUT)/2025/report.html；服务中 http://$(HOST):$(PORT)/reports/2025 和 /reports/2024"
	@echo "2025 年度处于公示中，已有两条示例异议：http://$(HOST):$(PORT)/objections?year=2025（流程见 README“公示与异议”）"
ifneq ($(DEMO_SERVE),0)
	GEO_EVAL_DEMO=1 $(BIN)/geo-eval serve --host $(HOST) --port $(PORT)
endif

# `make serve`: serve the runs already registered under GEO_EVAL_DATA_DIR (needs GEO_EVAL_SECRET_KEY,
# or GEO_EVAL_DEMO=1 for a throwaway key)
serve: $(STAMP)
	$(BIN)/geo-eval serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check geo_eval api tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format geo_eval api tests bench
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench.run_bench
	$(BIN)/python -m bench.bench_zonal --n 1000000 --skip-slow
	$(BIN)/python -m bench.bench_blocks --n 300000
	$(BIN)/python -m bench.bench_xlsx --n 1000000 --writers geo_eval --rebuild
	$(BIN)/python -m bench.bench_report --n 1000000
	$(BIN)/python -m bench.bench_service
	$(BIN)/python -m bench.bench_tiles --n 100000 1000000
	$(BIN)/python -m bench.bench_overview --n 1000000
	$(BIN)/python -m bench.bench_auth
	$(BIN)/python -m bench.bench_store
	$(BIN)/python -m bench.bench_postgis --n 1000000

clean:
	rm -rf $(OUT) bench/data bench/out .pytest_cache .ruff_cache .mypy_cache
