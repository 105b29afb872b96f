# Everything runs from a local virtualenv that these targets create and keep up to date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test unit integration bench schema install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The whole pipeline with a demo coalition: embedded broker, worker, web, simulated partners.
run: $(STAMP)
	$(BIN)/turnout up --demo

## Unit tests (seconds, no broker), then integration tests (embedded broker, real workers).
test: $(STAMP)
	$(BIN)/pytest -q tests

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

## Throughput of the pipeline next to a bare-consumer baseline measured in the same run;
## then outreach: one rapid-response action to N people through the sandbox, and a held rate.
BENCH_PEOPLE ?= 20000
bench: $(STAMP)
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.outreach --people $(BENCH_PEOPLE)

## Regenerate the checked-in JSON Schema of partner events.
schema: $(STAMP)
	$(BIN)/turnout schema --out docs/schema/partner-events.json

clean:
	rm -rf $(VENV) .turnout *.egg-info
