# intake: the two commands a newcomer needs are `make run` and `make test`.
# Any Python 3.11 or newer: `make test PYTHON=python3.13 VENV=.venv-3.13` keeps a second environment.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app intake
HOST   ?= 127.0.0.1
PORT   ?= 5000

# The browser tests drive this Chromium: Debian's where installed; empty means Playwright's own
# (`make browsers` downloads it). Override: make test CHROMIUM=/path/to/chromium
CHROMIUM ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))
export CHROMIUM
# The fast lane's parallel workers (pytest-xdist): one per CPU. Its temporary folders (a copy of the
# SQLite database per test) go to memory where /dev/shm exists: no disk flush on every commit.
TEST_WORKERS ?= auto
FAST_TMPDIR ?= $(firstword $(wildcard /dev/shm) $(TMPDIR) /tmp)
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
PYTEST_EXIT = rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

.PHONY: run test test-fast test-pg lint bandit security-check translations clean help crash-test fuzz bench profile serve \
	browsers python-check test-entrypoint lock mypy hooks demo

help:
	@echo "make run    - set up .venv, upgrade the SQLite database in instance/, serve http://$(HOST):$(PORT) (and print e-mails)"
	@echo "make test   - set up .venv with the test requirements and run the whole suite"
	@echo "make test-fast - the edit-test loop: all but the browser, fuzz, outage and slow tests, in parallel (pytest-xdist)"
	@echo "make serve  - gunicorn with production settings (gunicorn.conf.py; secrets from the environment; docs/deploy.md)"
	@echo "make test-pg - the suite against PostgreSQL (TEST_DATABASE_URL, default the local 'test' database)"
	@echo "make lint   - ruff (pyproject.toml): unused names, likely bugs, import order, lines over 120; the locks match the pins"
	@echo "make mypy   - the type check (pyproject.toml [tool.mypy]); zero errors"
	@echo "make lock   - regenerate requirements.lock / requirements-test.lock (hashed) from the .txt pins"
	@echo "make hooks  - install the pre-commit hooks (ruff, lock, mypy, translations)"
	@echo "make demo   - load the demo data (fictional people, calls and requests) into the development database"
	@echo "make translations - extract the marked strings and merge them into each .po (README: Languages)"
	@echo "make bandit - static security scan (fails on medium or high findings)"
	@echo "make crash-test - kill -9 gunicorn 20 times under write load; check no acknowledged write is lost"
	@echo "make bench  - pages vs a bare Flask hello under wrk, 10k and 1M calls, SQLite and PostgreSQL (BENCH_ARGS=--quick)"
	@echo "make profile PAGE=calls N=200 - one page under cProfile (shares of rendering, forms, SQL, ...; PAGE=list)"
	@echo "make fuzz   - Hypothesis on every form and query string, FUZZ_EXAMPLES (10000) each; counts 5xx (must be 0)"

# The one requirement on the machine: Python 3.11 or newer (3.11, 3.12 and 3.13 are tested).
python-check:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) was not found. intake needs Python 3.11 or newer:"; \
	  echo "install python3 (3.11+) from your system's packages, python.org or pyenv, then run make PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "$(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); intake needs 3.11 or newer."; \
	  echo "Install python3.11, 3.12 or 3.13 (system packages, python.org or pyenv), then: make PYTHON=python3.12"; exit 1; }

$(BIN)/python:
	@$(MAKE) --no-print-directory python-check PYTHON=$(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installed from the hashed locks (pip refuses any file whose hash differs). The locks are made from
# requirements.txt and requirements-test.txt by `make lock`; change a pin there, then run it.
$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	touch $@

$(VENV)/.testing: requirements.lock requirements-test.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	touch $(VENV)/.runtime $@

# Regenerate the hashed locks from the pins (docs/development.md, "Dependencies"). Needs PyPI.
PIP_TOOLS := pip-tools==7.6.2
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links
lock: | $(BIN)/python
	$(BIN)/pip install --quiet $(PIP_TOOLS)
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --output-file requirements-test.lock requirements-test.txt
	@echo "Locks written: commit requirements.lock and requirements-test.lock with the .txt you changed."

# Type checking (pyproject.toml [tool.mypy]): must stay at zero errors.
mypy: $(VENV)/.testing
	$(BIN)/mypy

# The git hooks (.pre-commit-config.yaml): ruff, the lock, mypy and the translations' compile on commit.
hooks: $(VENV)/.testing
	$(BIN)/pip install --quiet pre-commit==4.7.0
	$(BIN)/pre-commit install

# Each translation catalogue (.po, edited by people) compiles to the .mo Flask-Babel reads. The .mo
# files are not committed: run, serve and the tests build them whenever a .po is newer.
TRANSLATIONS := intake/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -l $* -i $< -o $@

# Links in e-mails point where the app is served (make run PORT=8080 changes both).
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)

# Development: the database upgraded, who can sign in (or how to load the demo), the e-mail sender
# beside the server (without MAIL_SERVER it prints each e-mail here, links included), the server.
run: $(VENV)/.runtime $(MO_FILES)
	$(FLASK) db upgrade
	$(FLASK) users status
	@echo "E-mails are printed below as they are sent (every 3 s). Serving http://$(HOST):$(PORT)/ (Ctrl-C stops both)."
	@PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) outbox send --watch --interval 3 & sender=$$!; \
	trap 'kill $$sender 2>/dev/null; wait $$sender 2>/dev/null' EXIT INT TERM; \
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) run --host $(HOST) --port $(PORT)

# Invented data for trying the app: resources, calls, follow-ups, records requests in every state,
# and a demo account for each staff role, whose sign-in (e-mail and password) is printed once.
demo: $(VENV)/.runtime $(MO_FILES)
	$(FLASK) db upgrade
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) demo seed --with-staff
	@echo "Now: make run, and sign in at http://$(HOST):$(PORT)/login with one of the accounts above."
	@echo "Staff enrol an authenticator app at first sign-in (or run MFA_DISABLED=1 make run to skip it in development)."

# Production serving (docs/deploy.md): gunicorn.conf.py (GUNICORN_BIND, GUNICORN_WORKERS, ...) and
# INTAKE_CONFIG=production (always). The app refuses to start, with one message naming
# what is missing, without real SECRET_KEY, DATA_KEYS and BLIND_INDEX_KEY in the environment.
serve: $(VENV)/.runtime $(MO_FILES)
	INTAKE_CONFIG=production $(BIN)/gunicorn --config gunicorn.conf.py

test: $(VENV)/.testing $(MO_FILES)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); $(PYTEST_EXIT)

# The edit-test loop (docs/development.md): every test but the browser, fuzz, service-outage and slow ones,
# on TEST_WORKERS processes. PYTEST_ARGS narrows it (PYTEST_ARGS=tests/test_calls_list.py).
test-fast: $(VENV)/.testing $(MO_FILES)
	TMPDIR=$(FAST_TMPDIR) $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal \
	  -m "not browser and not fuzz and not outage and not slow" $(PYTEST_ARGS); $(PYTEST_EXIT)

# The suite against PostgreSQL; the database is created first when it does not exist.
test-pg: $(VENV)/.testing $(MO_FILES)
	$(BIN)/python scripts/ensure_pg_database.py "$(TEST_DATABASE_URL)"
	TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); $(PYTEST_EXIT)

# Playwright's own Chromium, for machines without Debian's (/usr/bin/chromium): then run with CHROMIUM= (empty).
browsers: $(VENV)/.testing
	$(BIN)/playwright install chromium

lint: $(VENV)/.testing
	$(BIN)/ruff check intake tests bench scripts migrations config.py gunicorn.conf.py
	$(BIN)/python scripts/check_lock.py

bandit: $(VENV)/.testing
	$(BIN)/bandit -q -r intake config.py gunicorn.conf.py --severity-level medium

# Crash safety (SECURITY.md): SIGKILL the server mid-write 20 times; exit 1 if an acknowledged write is lost.
crash-test: $(VENV)/.runtime
	$(BIN)/python scripts/crash_test.py $(CRASH_ARGS)

# Benchmark (DESIGN.md section 7): seeds 10,000 and 1,000,000 calls, serves them with gunicorn in the
# production configuration and measures pages with wrk as a share of a bare Flask "hello" measured in
# the same run; writes docs/benchmarks.md. Needs PostgreSQL and Redis (BENCH_PG_URL, BENCH_REDIS_URL).
# BENCH_ARGS: --quick (3 s a page), --sqlite-only, --pg-only, --sizes 10000,100000 (bench/run.py --help).
bench: $(VENV)/.testing
	@command -v wrk >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get install -y -qq wrk >/dev/null || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk >/dev/null; }; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Deep fuzz (SECURITY.md, Reliability): FUZZ_EXAMPLES per form and per page's query string (hours at
# 10,000; FUZZ_EXAMPLES=500 make fuzz for a shorter run). FUZZ_SEED repeats a run; the seed is printed.
# pytest fails (exit 1) on any 5xx; the summary prints forms fuzzed, requests, 5xx answers and seconds.
FUZZ_EXAMPLES ?= 10000
FUZZ_SEED ?= $(shell date +%s)
fuzz: $(VENV)/.testing
	INTAKE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --hypothesis-seed=$(FUZZ_SEED) tests/fuzz $(PYTEST_ARGS)

security-check: $(VENV)/.runtime
	$(FLASK) security-check

# Extract every marked string into messages.pot and merge it into each catalogue: new strings
# arrive empty, changed ones marked fuzzy. Translate them in the .po (tests/test_translations.py
# fails until every string of the requester-facing pages has its Spanish); run/test compile it.
translations: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update --ignore-obsolete -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)

clean:
	rm -rf $(VENV) .pytest_cache

# The container's entrypoint (deploy/docker-entrypoint.sh) against the local PostgreSQL and Redis,
# as the image runs it (no Docker engine needed): tests/test_entrypoint.py.
test-entrypoint: $(VENV)/.testing $(MO_FILES)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_entrypoint.py $(PYTEST_ARGS); $(PYTEST_EXIT)

# Where one page's time goes: N requests through the test client under cProfile, production settings, a seeded
# SQLite database kept between runs (bench/profile_page.py --help: --calls, --database postgresql, --top).
# make profile PAGE=calls N=300 (PAGE=list names the pages); PROFILE_ARGS="--calls 1000000" for the large size.
PAGE ?= calls
N ?= 200
profile: $(VENV)/.testing $(MO_FILES)
	@if [ "$(PAGE)" = "list" ]; then $(BIN)/python bench/profile_page.py --list; \
	else $(BIN)/python bench/profile_page.py --page $(PAGE) --requests $(N) $(PROFILE_ARGS); fi
