# Wertkette developer commands. On a fresh machine `make run` and `make test` are all you need:
# they create .venv, install Python and npm dependencies and compile translations as required.
# Linters (ruff, mypy) come with the `test` extra.
# Stamp files (.venv/.installed-*, node_modules/.package-lock.json) skip reinstalls until
# pyproject.toml or package-lock.json change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_STAMP := node_modules/.package-lock.json
TRANSLATIONS := portal/translations
CHROMIUM := /usr/bin/chromium
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k login -x'`.
PYTEST_ARGS ?=

.PHONY: help run test lint fmt bench migrate demo clean translations

help:
	@echo "Wertkette make targets:"
	@echo "  run      set up everything, migrate, load demo data if empty, serve on 127.0.0.1:\$$PORT (5000)"
	@echo "  test     set up everything (incl. Chromium if missing) and run the test suite"
	@echo "  lint     ruff check, ruff format --check, mypy"
	@echo "  fmt      apply ruff fixes and formatting"
	@echo "  bench    run the benchmarks"
	@echo "  migrate  apply database migrations (portal db upgrade)"
	@echo "  demo     load the demo network into an empty database"
	@echo "  translations  re-extract strings and update the de/en catalogs"
	@echo "  clean    remove .venv, node_modules, caches and build output (keeps instance/)"

# --- set-up -------------------------------------------------------------------------------------

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	@touch $@

$(NODE_STAMP): package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $@

# Compiles portal/translations/*/LC_MESSAGES/*.po to .mo (skipped while there is none).
define compile-translations
if [ -d $(TRANSLATIONS) ] && find $(TRANSLATIONS) -name '*.po' | grep -q .; then \
	$(BIN)/pybabel compile -d $(TRANSLATIONS); \
else \
	echo "translations: nothing to compile in $(TRANSLATIONS)"; \
fi
endef

# Installs Debian's chromium for the browser tests when it is missing (needs root or sudo).
define ensure-browser
if [ ! -x $(CHROMIUM) ]; then \
	bash scripts/install-browser.sh || \
	echo "WARNING: could not install $(CHROMIUM); browser tests will be skipped" >&2; \
fi
endef

# --- commands -----------------------------------------------------------------------------------

run: $(VENV)/.installed-run $(NODE_STAMP)
	@$(compile-translations)
	$(BIN)/portal db upgrade
	$(BIN)/portal demo load --if-empty
	exec $(BIN)/portal serve --host 127.0.0.1 --port $${PORT:-5000}

test: $(VENV)/.installed-test $(NODE_STAMP)
	@$(compile-translations)
	@$(ensure-browser)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The scenario suite on profile M (seeded once into wk_bench_m, a few minutes; reused after).
# BENCH_ARGS="--profile S" for the CI-sized network, "--only inbox" for one group.
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

migrate: $(VENV)/.installed-run
	$(BIN)/portal db upgrade

demo: migrate
	$(BIN)/portal demo load --if-empty

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf test-artifacts bench/out *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	if [ -d $(TRANSLATIONS) ]; then find $(TRANSLATIONS) -name '*.mo' -delete; fi

# Re-extract translatable strings and update the German and English catalogs (then translate
# the new empty entries; tests/test_translations.py fails while any is missing).
translations: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		-o $(TRANSLATIONS)/messages.pot portal partners shared_records auth templates
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching
	$(BIN)/pybabel compile -d $(TRANSLATIONS)
