# loudou: `make demo` to try it, `make test` to check it. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_SEED ?= 42
DEMO_SIZE ?= small

.PHONY: install demo serve test test-sqlite test-postgres lint format check-migrations messages screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	test -f .env || printf '# Development settings for this checkout (see src/loudou/settings.py).\nLOUDOU_DEBUG=1\n' > .env
	touch $(STAMP)

install: $(STAMP)

# Migrate, load the built-in playbooks and a deterministic demo company, serve it on 127.0.0.1:8000.
demo: $(STAMP)
	LOUDOU_DEBUG=1 $(BIN)/loudou migrate --no-input -v 0
	LOUDOU_DEBUG=1 $(BIN)/loudou demo --seed $(DEMO_SEED) --size $(DEMO_SIZE) --if-empty
	@echo ""
	@echo "  loudou is serving on http://$(HOST):$(PORT)/   (Ctrl-C stops it)"
	@echo "  Sign in as: seller (a Beijing account manager), manager (her branch GM) or admin;"
	@echo "  every demo user has the password loudou-demo"
	@echo ""
	LOUDOU_DEBUG=1 $(BIN)/loudou runserver $(HOST):$(PORT) --noreload

# Production-style serving: gunicorn with production settings (LOUDOU_SECRET_KEY and
# LOUDOU_ALLOWED_HOSTS must be set).
serve: $(STAMP)
	$(BIN)/loudou collectstatic --no-input -v 0
	$(BIN)/gunicorn loudou.wsgi:application --workers 2 --bind $(HOST):$(PORT) --access-logfile -

# The whole suite on SQLite and on PostgreSQL (a throwaway cluster, or LOUDOU_TEST_DATABASE_URL),
# side by side, each output line prefixed with its database (scripts/test-both).
# LOUDOU_REQUIRE_POSTGRES=1 (CI) turns a missing PostgreSQL into a failure. The browser tests
# (tests/browser, Playwright driving Debian's Chromium) run in both passes; without Chromium they
# skip, and LOUDOU_REQUIRE_BROWSER=1 (CI) turns that into a failure.
test: $(STAMP) lint-fast check-migrations
	MAKE="$(MAKE)" scripts/test-both

test-sqlite: $(STAMP)
	env -u DATABASE_URL LOUDOU_DEBUG=1 $(BIN)/pytest -q

test-postgres: $(STAMP)
	scripts/with-postgres env LOUDOU_DEBUG=1 LOUDOU_EXPECT_POSTGRES=1 $(BIN)/pytest -q

check-migrations: $(STAMP)
	env -u DATABASE_URL LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=$$(mktemp -d) $(BIN)/loudou makemigrations --check --dry-run -v 1

lint-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: lint-fast
	LOUDOU_DEBUG=1 $(BIN)/mypy src/loudou

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A full-page PNG of every page in both languages into docs/screenshots/, from the demo data that
# `make demo` loaded (needs Chromium: apt-get install chromium fonts-wqy-zenhei).
screenshots: $(STAMP)
	LOUDOU_DEBUG=1 $(BIN)/loudou screenshots --out docs/screenshots

# Rebuild the compiled translations after editing src/loudou/locale/*/LC_MESSAGES/django.po.
messages: $(STAMP)
	cd src/loudou && LOUDOU_DEBUG=1 ../../$(BIN)/loudou compilemessages -v 0

clean:
	rm -rf $(VENV) var build dist src/*.egg-info
