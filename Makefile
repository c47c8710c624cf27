# intake: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app intake
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-pg lint bandit security-check translations clean help crash-test fuzz bench serve

help:
	@echo "make run    - set up .venv, upgrade the SQLite database in instance/, serve http://$(HOST):$(PORT)"
	@echo "make test   - set up .venv with the test requirements and run the whole suite"
	@echo "make serve  - gunicorn with production settings (gunicorn.conf.py; secrets from the environment; docs/deploy.md)"
	@echo "make test-pg - the suite against PostgreSQL (TEST_DATABASE_URL, default the local 'test' database)"
	@echo "make lint   - ruff (ruff.toml): unused names, likely bugs, import order, lines over 120"
	@echo "make translations - extract the marked strings and merge them into each .po (README: Languages)"
	@echo "make bandit - static security scan (fails on medium or high findings)"
	@echo "make crash-test - kill -9 gunicorn 20 times under write load; check no acknowledged write is lost"
	@echo "make bench  - pages vs a bare Flask hello under wrk, 10k and 1M calls, SQLite and PostgreSQL (BENCH_ARGS=--quick)"
	@echo "make fuzz   - Hypothesis on every form and query string, FUZZ_EXAMPLES (10000) each; counts 5xx (must be 0)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.testing: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $(VENV)/.runtime $@

# Each translation catalogue (.po, edited by people) compiles to the .mo Flask-Babel reads. The .mo
# files are not committed: run, serve and the tests build them whenever a .po is newer.
TRANSLATIONS := intake/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -l $* -i $< -o $@

run: $(VENV)/.runtime $(MO_FILES)
	$(FLASK) db upgrade
	$(FLASK) users status
	$(FLASK) run --host $(HOST) --port $(PORT)

# Production serving (docs/deploy.md): gunicorn.conf.py (GUNICORN_BIND, GUNICORN_WORKERS, ...) and
# INTAKE_CONFIG=production (always). The app refuses to start, with one message naming
# what is missing, without real SECRET_KEY, DATA_KEYS and BLIND_INDEX_KEY in the environment.
serve: $(VENV)/.runtime $(MO_FILES)
	INTAKE_CONFIG=production $(BIN)/gunicorn --config gunicorn.conf.py

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: $(VENV)/.testing $(MO_FILES)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-pg: $(VENV)/.testing $(MO_FILES)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(VENV)/.testing
	$(BIN)/ruff check intake tests bench scripts migrations config.py gunicorn.conf.py

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
