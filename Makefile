# Everything a fresh Debian machine with Python 3.11 needs: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-core

.PHONY: venv demo demo-bigfoot hub test bench mutate lint typecheck clean services java chromium

# The server is its own distribution (a task's image needs none of it), installed here like a plugin.
PLUGINS := server plugins/papermill plugins/pytorch plugins/spark plugins/sql plugins/bigquery plugins/snowflake \
	plugins/sagemaker
# torch is pinned to the CPU build that machines of this kind keep in /opt/wheels.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

$(STAMP): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install -q --disable-pip-version-check $(FIND_LINKS) -c constraints.txt -e ".[test]" \
		$(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

# The console's browser libraries, from the npm registry through its lockfile.
CONSOLE := server/plait_server/console
$(CONSOLE)/node_modules/.package-lock.json: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	npm ci --prefix $(CONSOLE) --no-audit --no-fund --loglevel=error

venv: $(STAMP) $(CONSOLE)/node_modules/.package-lock.json

# Spark prepares data, a Snowflake query (on the local DuckDB warehouse) cleans it, PyTorch
# trains on it with 2 processes, a notebook reports.
demo: venv java
	$(BIN)/plait run examples/mix.py:train_and_report --rows 20000 --epochs 5

# A plain-Python map over 2,000 photos.
demo-bigfoot: venv
	$(BIN)/plait run examples/bigfoot.py:hunt --photos 2000 --batch-size 100

# The first hub bundle, the Bigfoot workflow, made byte for byte from examples/ into a folder hub
# (`plait hub import hunt@1.0.0 --hub build/hub --project P`, or publish it to a server's hub).
hub: venv
	$(BIN)/plait hub publish examples/bigfoot.py:hunt --version 1.0.0 --to build/hub

# Real servers the tests start themselves: redis-server from Debian's packages, and Java for
# Spark's JVM (the Spark tests and the simulated Spark operator's drivers). PostgreSQL,
# which the event-store tests reach on 127.0.0.1:5432 as user postgres without a password:
# left alone where it answers; otherwise installed, let in from 127.0.0.1 and started.
java:
	@command -v java >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q openjdk-17-jre-headless; }

services: java
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q redis-server; }
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
		command -v pg_ctlcluster >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q postgresql; }; \
		v=$$(ls /etc/postgresql | sort -V | tail -n 1); hba=/etc/postgresql/$$v/main/pg_hba.conf; \
		grep -q '^host all postgres 127.0.0.1/32 trust' $$hba || sed -i '1i host all postgres 127.0.0.1/32 trust' $$hba; \
		if pg_ctlcluster $$v main status >/dev/null 2>&1; then pg_ctlcluster $$v main reload; \
		else pg_ctlcluster --skip-systemctl-redirect $$v main start; fi; \
		for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
		pg_isready -h 127.0.0.1 -p 5432; }

# The console's tests drive Debian's Chromium through Playwright.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }

# Three workers: the suite mostly waits (servers, subprocesses, browsers); each test file stays on
# one worker (--dist loadfile), so a module's server or cluster starts once and its tests keep
# their order. Tests keep ports, databases and folders private (a fixed port takes a lock).
test: venv services chromium lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=30 -n 3 --dist loadfile

bench: venv
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/cpu_speedup.py
	$(BIN)/python bench/map_memory.py

# Mutation testing of the token rule (both backends), the engine's retries and resume, and the
# compiler's type checks; writes bench/MUTATION.md. Slow (about 40 minutes on 2 cores), so not
# part of `make test`. Needs nothing beyond the test environment: the mutator is bench/mutate/.
mutate: venv services
	$(BIN)/python bench/mutate/run.py --jobs 2 --report bench/MUTATION.md

# ruff, and the import-linter contracts in pyproject.toml: the core's layers import one way,
# and the core imports no vendor SDK.
lint: venv
	$(BIN)/ruff check core server plugins tests examples bench
	$(BIN)/lint-imports --no-cache

typecheck: venv
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .plait $(CONSOLE)/node_modules
