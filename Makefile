# The two set-up commands of the README: `make demo` and `make test`.
# Each creates the pinned environment in .venv on first use (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_USE_LEGACY_KERAS := 1

.PHONY: demo test test-fast lint venv mutate

venv:
	@VENV_DIR=$(VENV) scripts/bootstrap.sh

demo: venv  ## run the whole pipeline on the bundled digits data
	$(VENV)/bin/metric-learning run $(ARGS)

test: venv  ## the whole test suite, end-to-end pipeline tests included
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv  ## unit tests only (no end-to-end pipeline runs)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# cosmic-ray lives in its own venv: its dependencies never meet the pinned TFX stack
mutate: venv  ## mutation testing of the gate, metrics, splits, spans, sampling, push, settings (docs/mutation.md)
	@test -x .venv-mutate/bin/cosmic-ray || { $(PY) -m venv .venv-mutate && \
		.venv-mutate/bin/pip install -q -r scripts/mutation/requirements.txt; }
	.venv-mutate/bin/python scripts/mutation/run.py $(ARGS)
