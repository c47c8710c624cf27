# intake: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app intake
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-pg bandit security-check translations clean help crash-test

help:
	@echo "make run    - set up .venv, upgrade the SQLite database in instance/, serve http://$(HOST):$(PORT)"
	@echo "make test   - set up .venv with the test requirements and run the whole suite"
	@echo "make test-pg - the suite against PostgreSQL (TEST_DATABASE_URL, default the local 'test' database)"
	@echo "make bandit - static security scan (fails on medium or high findings)"
	@echo "make crash-test - kill -9 gunicorn 20 times under write load; check no acknowledged write is lost"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.testing: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) users status
	$(FLASK) run --host $(HOST) --port $(PORT)

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: $(VENV)/.testing
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-pg: $(VENV)/.testing
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bandit: $(VENV)/.testing
	$(BIN)/bandit -q -r intake config.py --severity-level medium

# Crash safety (SECURITY.md): SIGKILL the server mid-write 20 times; exit 1 if an acknowledged write is lost.
crash-test: $(VENV)/.runtime
	$(BIN)/python scripts/crash_test.py $(CRASH_ARGS)

security-check: $(VENV)/.runtime
	$(FLASK) security-check

translations: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o intake/translations/messages.pot .

clean:
	rm -rf $(VENV) .pytest_cache
