# payment-service: every target documents itself with `## text`; `make help` lists them.
# The native stack (Kafka, PostgreSQL, Redis, no Docker) is run by scripts/stack.py: see
# docs/operations.md. Options for it go in STACK_ARGS, e.g. make up STACK_ARGS='--postgres-port 5433'.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SUFFIXES:

PYTHON ?= python3
# Another interpreter gets its own venv: make test-unit PYTHON=python3.13 uses .venv-python3.13.
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
PY := $(VENV)/bin/python
APP := $(VENV)/bin/payment-service
# The stack's own processes (make up) run from the same venv (scripts/stackctl/apps.py reads it).
export PAYMENT_SERVICE_BIN ?= $(CURDIR)/$(APP)
STACK := $(PYTHON) scripts/stack.py
STACK_ARGS ?=
PYTEST_ARGS ?=
LOGS ?=
LINT_PATHS := src tests scripts bench examples
# pytest exits 5 when a folder has no test yet: say so instead of failing.
define pytest_in
	@set +e; $(1) $(PY) -m pytest $(2) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected in $(2)"; exit 0; fi; exit $$rc
endef
# The Docker stack: its secrets file (scripts/dockerstack.py writes it once, see docker-compose.yml).
DOCKER_ENV := .docker.env
COMPOSE = docker compose --env-file $(DOCKER_ENV)
DOCKERSTACK := $(PYTHON) scripts/dockerstack.py
# Which stack `make test-api` and `make db-seed` use: native (`make up`) or docker (`make
# docker-up`); by default the one that is running (the native one when both or neither are).
STACK_KIND ?= $(shell $(DOCKERSTACK) which 2>/dev/null || echo native)
DOCKER_CHECK = @docker info >/dev/null 2>&1 || { \
	echo "'make $@' needs a running Docker engine, and none is available here ('docker info' failed)."; \
	echo "Use the native stack instead: make up / make down / make logs."; exit 1; }

.PHONY: help install lock system-deps dev dev-setup up run-local down status logs env-check psql redis-cli \
	test full-test test-unit test-integration test-api chaos lint format db-seed bench \
	card-keys card-keys-rotate card-rewrap \
	docker-up docker-down docker-logs docker-shell docker-psql clean clean-all
.PHONY: prod-check deps-check debug metrics coverage deploy-staging deploy-prod hooks \
	docker-config docker-clean docker-test-api docker-db-seed

help: ## List the targets
	@echo "payment-service: make <target>   (first time: make up, then make test)"
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  %-18s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# ---- environment -----------------------------------------------------------------------------

install: $(VENV)/.installed ## Create .venv and install the package + dev tools from the hash-pinned requirements.lock

# Every dependency comes from requirements.lock with --require-hashes; the project itself is an
# editable install on top (--no-deps: its dependencies are all in the lock).
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || { echo "creating $(VENV) with $$($(PYTHON) --version)…"; $(PYTHON) -m venv $(VENV); }
	@echo "installing payment-service[dev] into $(VENV) (requirements.lock, --require-hashes)…"
	@{ $(PY) -m pip install --disable-pip-version-check --require-hashes -r requirements.lock \
		&& $(PY) -m pip install --disable-pip-version-check --no-deps -e . \
		&& $(PY) -m pip check; } > $(VENV)/pip-install.log 2>&1 || { tail -40 $(VENV)/pip-install.log; \
		echo "pip install failed; full log: $(VENV)/pip-install.log"; exit 1; }
	@touch $@

# The lock is universal (markers for Python 3.11-3.13, any platform) and hash-pinned, made by uv
# (pinned in the dev extra). uv keeps every version already in the lock unless told otherwise:
# make lock LOCK_ARGS='--upgrade-package aiohttp' (or --upgrade). requirements-prod.lock is the
# runtime subset (what the Docker image installs), at the same versions.
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command 'make lock'
lock: install ## Regenerate requirements.lock (dev) and requirements-prod.lock (runtime) with uv, hash-pinned
	$(UV_COMPILE) --extra dev -o requirements.lock $(LOCK_ARGS)
	$(UV_COMPILE) -c requirements.lock -o requirements-prod.lock
	@echo "wrote requirements.lock and requirements-prod.lock; run make install to apply"

system-deps: ## Install missing system packages (PostgreSQL, Redis, Java, Maven) and the Kafka jars
	@$(STACK) install $(STACK_ARGS)

dev: install ## Alias of install (seed name)
dev-setup: install ## Alias of install (seed name)

# ---- the local stack -------------------------------------------------------------------------

up: install ## Install what is missing, start Kafka/PostgreSQL/Redis + migrate + topics + banksim/processor/api, wait for /health
	@$(STACK) up $(STACK_ARGS)

run-local: up ## Alias of up

down: ## Stop exactly the processes that `make up` started (data is kept in .stack/)
	@$(STACK) stop $(STACK_ARGS)

status: ## Show each process of the stack, its pid, port and health
	@$(STACK) status $(STACK_ARGS)

logs: ## Show the last lines of every log in .stack/logs (LOGS='-f api' to follow one)
	@$(STACK) logs $(STACK_ARGS) $(LOGS)

env-check: ## Print the variables of the running local stack (secrets included: local only)
	@$(STACK) env $(STACK_ARGS)

psql: ## Open psql on the local stack's database
	@$(STACK) exec $(STACK_ARGS) -- bash -c 'exec psql "$$DATABASE_URL"'

redis-cli: ## Open redis-cli on the local stack's Redis
	@$(STACK) exec $(STACK_ARGS) -- bash -c 'exec redis-cli -u "$$REDIS_URL"'

db-seed: install ## Create a demo merchant and print its API key (the running stack: make up, or make docker-up)
	@if [ "$(STACK_KIND)" = docker ]; then $(MAKE) -s --no-print-directory docker-db-seed; \
	else $(STACK) exec $(STACK_ARGS) -- $(APP) db-seed; fi

card-keys: install ## List the processor's card keys and what each still seals (needs `make up`)
	@$(STACK) exec $(STACK_ARGS) --processor -- $(APP) cards keys list --usage

card-keys-rotate: install ## Rotate the card key pair (the API and processor follow; then card-rewrap)
	@$(STACK) exec $(STACK_ARGS) --processor -- $(APP) cards keys rotate

card-rewrap: install ## Re-seal stored card envelopes under the current key (then retire old keys)
	@$(STACK) exec $(STACK_ARGS) --processor -- $(APP) cards rewrap

# ---- quality ---------------------------------------------------------------------------------

test: install system-deps lint ## Everything: lint, then unit + integration + e2e tests (starts its own stack on free ports)
	$(call pytest_in,,tests)

full-test: test ## Alias of test (seed name)

test-unit: install ## Unit tests (no servers)
	$(call pytest_in,,tests/unit)

test-integration: install system-deps ## Integration tests against real Kafka/PostgreSQL/Redis (own stack unless URLs are set)
	$(call pytest_in,,tests/integration)

CHAOS_RATE ?= 20
CHAOS_SECONDS ?= 30
CHAOS_REPORT ?= .chaos/results.jsonl
chaos: install system-deps ## Fault suite: each scenario under CHAOS_RATE payments/s for CHAOS_SECONDS, then the invariants (own stack on free ports; rows to CHAOS_REPORT)
	@mkdir -p $(dir $(CHAOS_REPORT))
	$(call pytest_in,CHAOS_RATE=$(CHAOS_RATE) CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_REPORT=$(abspath $(CHAOS_REPORT)),tests/chaos)
	@$(PY) -m tests.chaos.report $(CHAOS_REPORT)

test-api: install ## End-to-end tests (tests/e2e) against the running service, `make up`'s or `make docker-up`'s (not the process-killing ones)
	@if [ "$(STACK_KIND)" = docker ]; then $(MAKE) --no-print-directory docker-test-api; \
	else $(STACK) exec $(STACK_ARGS) -- bash -c 'PAYMENT_API_URL=http://127.0.0.1:$${API_PORT:-8000} \
		exec $(PY) -m pytest tests/e2e -m "not fault" $(PYTEST_ARGS)'; fi

lint: install ## ruff check, ruff format --check, mypy
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy
	$(PY) -m mypy --strict scripts tests bench examples

format: install ## Format the code and apply ruff's safe fixes
	$(PY) -m ruff format $(LINT_PATHS)
	$(PY) -m ruff check --fix $(LINT_PATHS)

bench: up ## Benchmark: start the stack if needed, run the 3 scenarios (~10-15 min), write bench/results/ (BENCH_ARGS='profile', 'holdout' or '--scenarios 2', docs/benchmark.md)
	@$(STACK) exec $(STACK_ARGS) -- $(PY) -m bench $(BENCH_ARGS)

# ---- production checks, coverage, debugging, deployment (seed target names) ------------------

STRICT ?=
COVERAGE_TESTS ?= tests
DEBUG_PORT ?= 8001
DEBUG_INSTANCE ?= 1
METRICS_SECONDS ?= 10
METRICS_PORT ?= 8125

deps-check: install ## The venv is exactly requirements.lock, `pip check`, and pip-audit (says NOT CHECKED when its service is unreachable; STRICT=1 fails then)
	@$(PY) scripts/deps_check.py $(if $(STRICT),--strict); rc=$$?; [ $$rc -eq 2 ] && exit 0; exit $$rc

prod-check: install ## lint + every test + deps-check + the Docker image build where an engine runs; a summary says what was not checked (STRICT=1 fails on it)
	@set -o pipefail; failed=; gaps=; \
	echo "==> lint and tests (make test)"; \
	$(MAKE) --no-print-directory test || failed="$$failed tests"; \
	echo "==> dependencies (make deps-check)"; \
	$(PY) scripts/deps_check.py; rc=$$?; \
	if [ $$rc -eq 1 ]; then failed="$$failed deps"; elif [ $$rc -eq 2 ]; then gaps="$$gaps vulnerability-audit"; fi; \
	echo "==> Docker image"; \
	if docker info >/dev/null 2>&1; then \
		docker build -t payment-service:local . || failed="$$failed image"; \
	else \
		echo "image build: SKIPPED (no Docker engine answers 'docker info'; docker-compose.yml is checked by tests/unit/test_compose.py)"; \
		gaps="$$gaps image-build"; \
	fi; \
	echo; \
	if [ -n "$$failed" ]; then echo "prod-check: FAILED:$$failed$${gaps:+ (not checked:$$gaps)}"; exit 1; fi; \
	if [ -n "$$gaps" ]; then echo "prod-check: passed, but NOT CHECKED:$$gaps"; [ -z "$(STRICT)" ]; exit $$?; fi; \
	echo "prod-check: PASSED"

coverage: install system-deps ## Tests under coverage, the service's subprocesses included (COVERAGE_TESTS=tests/unit for a quick one): terminal report, htmlcov/index.html, coverage.xml
	@rm -f .coverage .coverage.*
	$(call pytest_in,,$(COVERAGE_TESTS) --cov --cov-report=term-missing:skip-covered --cov-report=html --cov-report=xml)

debug: install ## Debug info, then one more API in the foreground with DEBUG logs on DEBUG_PORT (8001) against the running native stack (Ctrl-C stops it)
	@echo "python    $$($(PY) --version) ($(PY))"
	@echo "package   payment-service $$($(PY) -c 'import importlib.metadata as m; print(m.version("payment-service"))')"
	@echo "git       $$(git describe --always --dirty 2>/dev/null || echo '-')"
	@$(STACK) status $(STACK_ARGS)
	@echo "starting a second API instance on http://127.0.0.1:$(DEBUG_PORT) (results partition $(DEBUG_INSTANCE)), LOG_LEVEL=DEBUG; the stack's own API keeps running"
	@$(STACK) exec $(STACK_ARGS) -- env LOG_LEVEL=DEBUG DEBUG=true API_HOST=127.0.0.1 \
		API_PORT=$(DEBUG_PORT) API_INSTANCE=$(DEBUG_INSTANCE) $(APP) api

metrics: ## Listen on DogStatsD's port (udp 127.0.0.1:8125) for METRICS_SECONDS (10) and print what the running API and processor send
	@$(PYTHON) scripts/statsd_capture.py --port $(METRICS_PORT) --seconds $(METRICS_SECONDS)

hooks: install ## Install the git pre-commit hooks (ruff, ruff format, mypy from .venv: .pre-commit-config.yaml)
	$(VENV)/bin/pre-commit install

define deploy_needs
	@echo "make $@: not automated in this project, and nothing was deployed."
	@echo "A deployment to $(1) needs what this repository does not have:"
	@echo "  - a container registry to push the image to (docker build -t <registry>/payment-service:<version> . && docker push ...),"
	@echo "    and credentials for it;"
	@echo "  - a cluster or hosts to run it on (Kubernetes manifests / Helm chart, or a compose host), with access to them;"
	@echo "  - managed Kafka (SASL_SSL or mTLS, ACLs per DESIGN.md), PostgreSQL and Redis, and their credentials;"
	@echo "  - the secrets (SECRET_KEY, ENCRYPTION_KEY, database and Redis passwords, DD_API_KEY) in a secret store;"
	@echo "  - ENVIRONMENT=production (the service then refuses to start without its secrets)."
	@echo "Run 'make prod-check' first."
	@exit 1
endef

deploy-staging: ## Say what a staging deployment needs (registry, credentials, cluster) and stop with exit 1
	$(call deploy_needs,staging)

deploy-prod: ## Say what a production deployment needs (registry, credentials, cluster) and stop with exit 1
	$(call deploy_needs,production)

# ---- Docker (needs a Docker engine; none on this project's machines) ----------------------------

docker-up: ## (needs Docker) Build and start the same stack with docker compose, wait for health (DATADOG=1 adds the agent)
	$(DOCKER_CHECK)
	@$(DOCKERSTACK) env-file
	$(if $(DATADOG),COMPOSE_PROFILES=datadog DD_AGENT_HOST=datadog-agent DD_TRACE_ENABLED=true) \
		$(COMPOSE) up -d --build --wait
	@echo "API http://localhost:8000 (docs /docs); then: make db-seed, make test-api, make docker-down"

docker-down: ## (needs Docker) Stop the docker compose stack (its data volumes and .docker.env are kept)
	$(DOCKER_CHECK)
	$(COMPOSE) --profile datadog down

docker-clean: ## (needs Docker) Stop the docker compose stack and delete its volumes together with .docker.env (their passwords)
	$(DOCKER_CHECK)
	$(COMPOSE) --profile datadog down --volumes --remove-orphans
	rm -f $(DOCKER_ENV)

docker-config: ## Check docker-compose.yml with `docker compose config` (needs the compose plugin, not an engine)
	@$(DOCKERSTACK) env-file >/dev/null
	$(COMPOSE) config --quiet && $(COMPOSE) --profile datadog config --quiet && echo "docker-compose.yml: valid"

docker-logs: ## (needs Docker) Follow the docker compose logs
	$(DOCKER_CHECK)
	$(COMPOSE) logs -f

docker-shell: ## (needs Docker) Open a shell in the api container
	$(DOCKER_CHECK)
	$(COMPOSE) exec api bash

docker-psql: ## (needs Docker) Open psql in the postgres container
	$(DOCKER_CHECK)
	$(COMPOSE) exec postgres psql -U payment_user payment_db

docker-db-seed: ## (needs Docker) Create a demo merchant in the Docker stack and print its API key
	$(DOCKER_CHECK)
	@$(COMPOSE) exec -T api payment-service db-seed

docker-test-api: install ## (needs Docker) tests/e2e from this host against the Docker stack's published ports
	$(DOCKER_CHECK)
	@$(DOCKERSTACK) exec -- $(PY) -m pytest tests/e2e -m "not fault" $(PYTEST_ARGS)

# ---- cleaning --------------------------------------------------------------------------------

clean: ## Remove caches (.mypy_cache, .ruff_cache, .pytest_cache, __pycache__)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

clean-all: down clean ## Stop the stack, then remove .stack (all local data), .venv and caches
	rm -rf .stack $(VENV) src/*.egg-info
	@echo "kept the shared Kafka jar cache: ~/.cache/payment-service (remove it by hand if wanted)"
	@test ! -f $(DOCKER_ENV) || echo "kept $(DOCKER_ENV) and the Docker volumes (the passwords and the data they open): make docker-clean removes both"
