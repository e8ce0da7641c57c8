# The two set-up commands: `make run` (the product with a demo) and `make test` (the test suite).
# Both create the virtualenv from requirements.txt on first use.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Set PYTEST_WORKERS=0 to run tests in one process; PYTEST_ARGS adds options (e.g. --randomly-seed=N).
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: run test bench browser

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py demo

# Browser tests drive Debian's chromium; install it when it is missing and we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the admin browser tests"; \
	    apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	  else echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)"; exit 1; fi; }

test: $(VENV)/.installed browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q $(PYTEST_ARGS)

bench: $(VENV)/.installed
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done
