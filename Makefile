# skillharbor — everything a fresh machine needs is two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The offline OSV database snapshot beside this checkout, unless one is configured.
ifneq ($(wildcard ../shared/advisory-db),)
export SKILLHARBOR_ADVISORY_DB ?= $(abspath ../shared/advisory-db)
endif

.PHONY: run test test-unit test-integration test-docker install base-image doctor bench template lint clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the local stack: moto, the HTTP API, pollers, scheduler, runner worker
	$(PY) -m chalicelib.local.stack

test: $(STAMP)  ## the whole suite (unit, moto integration, real Docker engine)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-docker: $(STAMP)
	SKILLHARBOR_REQUIRE_DOCKER=1 $(PY) -m pytest tests/docker

base-image: $(STAMP)  ## the sandbox base image (pulls the configured one, or builds it offline)
	$(PY) -m chalicelib.runner.base_image

doctor: $(STAMP)  ## does this Docker engine enforce each isolation property?
	$(PY) -m chalicelib.runner.doctor

bench: $(STAMP)  ## benchmarks → bench/results/*.json and docs/BENCHMARKS.md
	$(PY) -m bench.run_all

template: $(STAMP)  ## the deployable SAM/CloudFormation template in build/
	$(PY) -m infra.template build/merge-template.json
	$(VENV)/bin/chalice package --stage dev --merge-template build/merge-template.json build/package
	$(VENV)/bin/cfn-lint build/package/sam.json

clean:
	rm -rf build .pytest_cache .hypothesis
