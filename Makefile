# payment-service: every target documents itself with `## text`; `make help` lists them.
# The native stack (Kafka, PostgreSQL, Redis, no Docker) is run by scripts/stack.py: see
# docs/operations.md. Options for it go in STACK_ARGS, e.g. make up STACK_ARGS='--postgres-port 5433'.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SUFFIXES:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APP := $(VENV)/bin/payment-service
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
DOCKER_CHECK = @docker info >/dev/null 2>&1 || { \
	echo "'make $@' needs a running Docker engine, and none is available here ('docker info' failed)."; \
	echo "Use the native stack instead: make up / make down / make logs."; exit 1; }

.PHONY: help install lock system-deps dev dev-setup up run-local down status logs env-check psql redis-cli \
	test full-test test-unit test-integration test-api lint format db-seed bench \
	card-keys card-keys-rotate card-rewrap \
	docker-up docker-down docker-logs docker-shell docker-psql clean clean-all

help: ## List the targets
	@echo "payment-service: make <target>   (first time: make up, then make test)"
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  %-18s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# ---- environment -----------------------------------------------------------------------------

install: $(VENV)/.installed ## Create .venv and install the package + dev tools, pinned by requirements.lock

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || { echo "creating $(VENV) with $$($(PYTHON) --version)…"; $(PYTHON) -m venv $(VENV); }
	@echo "installing payment-service[dev] into $(VENV) (constraints: requirements.lock)…"
	@$(PY) -m pip install --disable-pip-version-check -c requirements.lock -e '.[dev]' \
		> $(VENV)/pip-install.log 2>&1 || { tail -40 $(VENV)/pip-install.log; \
		echo "pip install failed; full log: $(VENV)/pip-install.log"; exit 1; }
	@touch $@

lock: ## Regenerate requirements.lock from the packages in .venv
	@{ echo "# Every package of the dev environment, pinned (pip install -c requirements.lock -e '.[dev]')."; \
	   echo "# Regenerate with: make lock"; \
	   $(PY) -m pip freeze --exclude-editable; } > requirements.lock
	@echo "wrote requirements.lock"

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

db-seed: install ## Create a demo merchant and print its API key (needs `make up`)
	@$(STACK) exec $(STACK_ARGS) -- $(APP) db-seed

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

test-api: install ## End-to-end tests (tests/e2e) against the service running from `make up` (not the process-killing ones)
	@$(STACK) exec $(STACK_ARGS) -- bash -c 'PAYMENT_API_URL=http://127.0.0.1:$${API_PORT:-8000} \
		exec $(PY) -m pytest tests/e2e -m "not fault" $(PYTEST_ARGS)'

lint: install ## ruff check, ruff format --check, mypy
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy
	$(PY) -m mypy --strict scripts tests bench examples

format: install ## Format the code and apply ruff's safe fixes
	$(PY) -m ruff format $(LINT_PATHS)
	$(PY) -m ruff check --fix $(LINT_PATHS)

bench: up ## Benchmark: start the stack if needed, run the 3 scenarios (~10-15 min), write bench/results/ (BENCH_ARGS='profile' or '--scenarios 2', docs/benchmark.md)
	@$(STACK) exec $(STACK_ARGS) -- $(PY) -m bench $(BENCH_ARGS)

# ---- Docker (needs a Docker engine; none on this project's machines) ----------------------------

docker-up: ## (needs Docker) Build and start the same stack with docker compose
	$(DOCKER_CHECK)
	@mkdir -p .stack && $(STACK) env --docker > .stack/docker.env
	docker compose --env-file .stack/docker.env up -d --build --wait

docker-down: ## (needs Docker) Stop the docker compose stack
	$(DOCKER_CHECK)
	docker compose --env-file .stack/docker.env down

docker-logs: ## (needs Docker) Follow the docker compose logs
	$(DOCKER_CHECK)
	docker compose --env-file .stack/docker.env logs -f

docker-shell: ## (needs Docker) Open a shell in the api container
	$(DOCKER_CHECK)
	docker compose --env-file .stack/docker.env exec api bash

docker-psql: ## (needs Docker) Open psql in the postgres container
	$(DOCKER_CHECK)
	docker compose --env-file .stack/docker.env exec postgres psql -U payment_user payment_db

# ---- cleaning --------------------------------------------------------------------------------

clean: ## Remove caches (.mypy_cache, .ruff_cache, .pytest_cache, __pycache__)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

clean-all: down clean ## Stop the stack, then remove .stack (all local data), .venv and caches
	rm -rf .stack $(VENV) src/*.egg-info
	@echo "kept the shared Kafka jar cache: ~/.cache/payment-service (remove it by hand if wanted)"
