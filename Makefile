# Two commands on a fresh clone: `make demo` (the pipeline on embedded digits) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed-stamp

export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (first time ~2 min; log: $(VENV)/pip.log)"
	@$(BIN)/python -m pip install -e '.[test]' > $(VENV)/pip.log 2>&1 || (tail -30 $(VENV)/pip.log; exit 1)
	@touch $(STAMP)

demo: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/unlearn run

test: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -q

clean:
	rm -rf data/prepared data/forget models reports/certificates reports/plots mlflow.db mlartifacts
