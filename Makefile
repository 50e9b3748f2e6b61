# The two commands that matter: `make run` (the whole product) and `make test` (every test, real services).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_REQS := requirements/base.txt requirements/embedded.txt
REQS := $(wildcard requirements/*.txt)
# Stamps named after the requirements' hash: changing a pin reinstalls, nothing else does.
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat $(RUNTIME_REQS) | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat $(REQS) | sha256sum | cut -c1-12)

.PHONY: run test venv services-up services-down manage bench-ingest demo-data notebooks bench-ml-api

# Development tools on top of the runtime: tests, notebooks, benchmarks.
venv: $(DEV_STAMP)

$(RUNTIME_STAMP): $(RUNTIME_REQS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Sensor Hub needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/base.txt -r requirements/embedded.txt
	@rm -f $(VENV)/.runtime-*
	@touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) $(REQS)
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	@rm -f $(VENV)/.dev-*
	@touch $@

# The product needs only the runtime requirements, so a first `make run` installs less.
run: $(RUNTIME_STAMP)
	$(BIN)/python scripts/stack.py run

test: venv
	$(BIN)/python scripts/stack.py test $(PYTEST_ARGS)

services-up: venv
	$(BIN)/python scripts/stack.py up

services-down: venv
	$(BIN)/python scripts/stack.py down

# make manage ARGS="createsuperuser"
manage: venv
	$(BIN)/python scripts/stack.py manage $(ARGS)

# Ingest and query benchmark against a real gunicorn and the embedded database (see docs/PERFORMANCE.md).
bench-ingest: venv
	$(BIN)/python scripts/stack.py manage ingest_benchmark $(BENCH_ARGS)

# The committed demo files: data/sensor_data.csv and data/anomaly_labels.csv (same seed and end, same bytes).
demo-data: venv
	$(BIN)/python scripts/stack.py manage generate_demo_data --no-db --end 2026-12-01T00:00:00Z \
		--csv data/sensor_data.csv --labels data/anomaly_labels.csv

# Execute every notebook headless (charts to docs/ml/); fails on any error. CI runs it after the tests.
notebooks: venv
	$(BIN)/python scripts/run_notebooks.py

# docs/db: schema.sql, erd.dot and erd.png from the migrated embedded database (or $DATABASE_URL). Commit the result;
# tests/sensorhub/test_db_docs.py fails when schema.sql or erd.dot no longer match the migrations. Needs Graphviz.
.PHONY: db-docs
db-docs: venv
	$(BIN)/python scripts/stack.py manage migrate --no-input
	eval "$$($(BIN)/python scripts/stack.py env)" && $(BIN)/python scripts/db_docs.py

# /detect_anomaly latency under load with locust (see docs/PERFORMANCE.md).
bench-ml-api: venv
	$(BIN)/python scripts/stack.py manage ml_api_benchmark $(BENCH_ARGS)
