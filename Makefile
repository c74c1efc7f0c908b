# The two commands a newcomer needs: `make run` and `make test` (CI runs `make lint` first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	mkdir -p data
	$(VENV)/bin/forge-app serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

# The test venv carries the pinned linters, so `make lint` and `make test` share one install.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check forge_app storage tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-test
	$(PY) bench/diff.py
	$(PY) bench/upload.py
	command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null 2>&1 || true)
	$(PY) bench/webhooks.py
	$(PY) bench/claim.py
	$(PY) bench/semgrep_ci.py
	$(PY) bench/slack.py
	$(PY) bench/marketplace.py
	$(PY) bench/scale.py

clean:
	rm -rf $(VENV) build *.egg-info
