# Two entry points: `make demo` runs the server with a demo lab; `make test` runs every test.
# Both install what they need first (Python venv, the web client's npm packages, Chromium for tests).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEB := clients/web
CHROMIUM := /usr/bin/chromium

.PHONY: demo test install bench-sync

$(BIN)/amaliy: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] || { echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

install: $(BIN)/amaliy $(WEB)/node_modules/.package-lock.json

demo: install
	$(BIN)/amaliy serve

test: install $(CHROMIUM)
	$(BIN)/python -m pytest

bench-sync: install
	$(BIN)/python bench/sync.py
