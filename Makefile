# `make demo` and `make test` each do the whole set-up themselves (scripts/setup.sh).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test lint bench docs clean

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

bench: setup
	$(PY) bench/run.py $(ARGS)

docs: setup
	$(PY) scripts/make_docs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
