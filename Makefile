# `make demo` and `make test` each do the whole set-up themselves (scripts/setup.sh).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test test-clock lint bench docs clean

# test-clock pins camwatch's own clock (CAMWATCH_CLOCK, camwatch/clock.py), not the host's
# (libfaketime breaks Python's subprocess waits and does not reach the static Go
# binaries), to three instants, and runs every test whose outcome can depend on the hour
# or the date (the `clock` marker; tests/conftest.py lists them and says why the tests
# with a real Prometheus or Alertmanager are not among them). Each test starts at the
# pinned instant and its subprocesses share the clock:
#   Taipei 02:10 on the 1st of a month: night, and UTC still says the month before;
#   Taipei 12:40 on 28 February of a common year: day, the month's last day, and an
#     inspection date of the 14-day rule;
#   Taipei 23:58 on 31 December: the last minutes of a month and a year, so a test
#     that takes longer than two minutes also crosses midnight.
CLOCK_INSTANTS := 2026-12-01T02:10:00+08:00 2027-02-28T12:40:00+08:00 2026-12-31T23:58:00+08:00

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh $(wildcard dashboards/schema-check/package.json)
	bash scripts/setup.sh
	touch $@

demo: setup
	$(VENV)/bin/camwatch demo $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest -n 2 -q -p no:cacheprovider $(ARGS)
	$(MAKE) --no-print-directory test-clock

test-clock: setup
	@set -e; for at in $(CLOCK_INSTANTS); do \
	  echo "== test-clock: camwatch's clock pinned to $$at"; \
	  CAMWATCH_CLOCK=$$at $(PY) -m pytest -n 2 -q -p no:cacheprovider -m clock $(ARGS); \
	done

bench: setup
	$(PY) bench/run.py $(ARGS)

docs: setup
	$(PY) scripts/make_docs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
