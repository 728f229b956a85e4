# PyDisco. On a fresh Debian machine:  `make run`  (serve the app)  or  `make test`  (the whole suite).
# Every target sets up what it needs first, and does nothing it does not need to on a second run.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= data

.PHONY: setup system-packages browser-packages run test lint typecheck unit browser-test bench clean

setup: $(VENV)/.installed
	@$(PY) -m provision
	@$(PY) -m tasks.prepare

system-packages:
	@$(PYTHON) -m provision.system venv clang npm

browser-packages:
	@$(PYTHON) -m provision.system chromium chromedriver

# the virtual environment, rebuilt only when the pinned dependencies change
$(VENV)/.installed: pyproject.toml | system-packages
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: setup
	$(PY) -m server --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: lint typecheck browser-packages
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

typecheck: setup
	$(PY) -m mypy py_shared server py_cpython py_cli provision harness tasks py_browser

# the fast loop: everything but the headless-browser tests
unit: setup
	$(PY) -m pytest -m "not browser"

browser-test: setup browser-packages
	$(PY) -m pytest -m browser

# every benchmark; each prints JSON lines (PyTorch comes with the bench extra, TF.js is fetched by its bench)
bench: setup browser-packages
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(PY) -m bench.webgpu_dispatch
	$(PY) -m bench.page_boot
	$(PY) -m bench.cpu_train
	$(PY) -m bench.browser_train
	$(PY) -m bench.tasks_local
	$(PY) -m bench.fed_round
	$(PY) -m bench.fed_scale
	$(PY) -m bench.fed_soak
	$(PY) -m bench.secagg
	$(PY) -m bench.dec_round

clean:
	rm -rf $(VENV) .cache www/vendor www/dist build *.egg-info
