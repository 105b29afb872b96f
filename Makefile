# Everything runs from a local virtualenv that these targets create and keep up to date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test unit integration bench soak fuzz schema settings-doc constraints install clean

## Dependencies at the versions in constraints.txt (the ranges are pyproject.toml's).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The browser test drives Debian's Chromium (playwright's own download does not work offline).
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

## The whole pipeline with a demo coalition: embedded broker, worker, web, simulated partners.
## `make run PORT=8001` picks the web app's port.
PORT ?= 8000
run: $(STAMP)
	$(BIN)/turnout up --demo --port $(PORT)

## Integration tests (embedded broker, real workers) and unit tests (seconds, no broker), on
## TEST_WORKERS pytest-xdist processes, a test file at a time each (a file's tests share its
## stacks; the integration files, the long ones, are handed out first). Each process starts its
## own broker. The tests mostly wait on the stacks they start, so two share two cores well.
TEST_WORKERS ?= 2
PARALLEL     := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q --durations=15 $(PARALLEL) tests/integration tests/unit

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q $(PARALLEL) tests/integration

## Throughput of the pipeline with 1 and with 2 workers, next to two baselines measured in the same run
## (a bare consumer and a hand-written aiokafka read-process-write loop);
## then outreach: one rapid-response action to N people handed to the sandbox, next to the Twilio
## SDK alone, and again behind the sandbox's Twilio queue at 200/s (how fast texts leave it);
## then dashboard freshness: check-in accepted → visible in the live stream (p50/p95).
BENCH_PEOPLE ?= 20000
bench: $(STAMP)
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.outreach --people $(BENCH_PEOPLE)
	$(BIN)/python -m benchmarks.dashboard --checkins 1000

## The fault and load suite, not part of `make test` (about 20 minutes; README "Soak: load and
## faults"): 200,000 events, worker SIGKILLs under load and mid-fan-out, the broker frozen,
## a provider storm. Sizes: SOAK_ARGS="--events 50000 --people 5000" (see --help).
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

## Schemathesis with every check, signed and unsigned, at full size (make test runs 25 examples per
## operation): README "How we test".
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	TURNOUT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TURNOUT_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(BIN)/pytest -q -p no:cacheprovider --timeout 3600 tests/integration/test_openapi_fuzz.py

## Regenerate the checked-in JSON Schema of partner events.
schema: $(STAMP)
	$(BIN)/turnout schema --out docs/schema/partner-events.json

## Regenerate the README's configuration table from Settings (a unit test keeps it in sync).
settings-doc: $(STAMP)
	$(BIN)/turnout settings --markdown --readme README.md

## Re-pin constraints.txt to the newest releases pyproject.toml admits (a throwaway virtualenv).
PIN := .venv-pin
constraints:
	rm -rf $(PIN) && $(PYTHON) -m venv $(PIN)
	$(PIN)/bin/pip install --quiet --upgrade pip
	$(PIN)/bin/pip install --quiet -e '.[dev]'
	{ head -1 constraints.txt; $(PIN)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(PIN)

clean:
	rm -rf $(VENV) .turnout *.egg-info
