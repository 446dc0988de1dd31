# skillharbor — everything a fresh machine needs is two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-docker install system-deps gvisor base-image doctor bench template advisories import-names lint clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@# compat: a plain path entry in a .pth; the default editable finder (a .pth import hook) cost every
	@# start-up ~25 ms, a tenth of `skillharbor scan` in CI. compileall: the project's bytecode is written
	@# once here, so runs under PYTHONDONTWRITEBYTECODE do not compile every module on each start-up.
	$(PY) -m pip install --quiet --no-deps -e . --config-settings editable_mode=compat
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q chalicelib >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Without a registry the base image is built offline with debootstrap; a fresh
# Debian host lacks it. The console's browser tests (tests/console) need chromium
# and its chromedriver. Each is installed when we can (root with apt), else a hint.
system-deps:
	@command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing debootstrap (to build the sandbox base image offline)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; \
	  else \
	    echo "note: debootstrap is not installed; without it the base image must be pullable ($${SKILLHARBOR_BASE_IMAGE:-python:3.11-slim})" >&2; \
	  fi; }
	@# the CNCF distribution registry: tests (and SKILLHARBOR_REGISTRY users) share images through it on 127.0.0.1
	@command -v docker-registry >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing docker-registry (a local image registry for the runner tests)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; \
	  else \
	    echo "note: docker-registry is not installed; the registry tests will skip" >&2; \
	  fi; }
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver (the admin console's browser tests)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "note: chromium/chromedriver are not installed; tests/console skips (apt-get install chromium chromium-driver)" >&2; \
	  fi; }
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then \
	  $(PYTHON) infra/gvisor_setup.py; \
	elif ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then \
	  echo "note: gVisor (runsc) is not registered with the engine; runs whose isolation rules ask for it fail closed (sudo make gvisor)" >&2; \
	fi

# gVisor's runsc from Debian, registered with the Docker engine (merged into /etc/docker/daemon.json,
# then SIGHUP to dockerd: running containers keep running). Idempotent; says what it changed.
gvisor:
	$(PYTHON) infra/gvisor_setup.py

run: $(STAMP) system-deps  ## the local stack: moto, the HTTP API, pollers, scheduler, runner worker
	$(PY) -m chalicelib.local.stack

test: $(STAMP) system-deps  ## the whole suite (unit, moto integration, real Docker engine)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-docker: $(STAMP) system-deps
	SKILLHARBOR_REQUIRE_DOCKER=1 $(PY) -m pytest tests/docker

base-image: $(STAMP) system-deps  ## the sandbox base image (pulls the configured one, or builds it offline)
	$(PY) -m chalicelib.runner.base_image

doctor: $(STAMP)  ## does this Docker engine enforce each isolation property?
	$(PY) -m chalicelib.runner.doctor

bench: $(STAMP) system-deps  ## benchmarks → bench/results/*.json and docs/BENCHMARKS.md
	$(PY) -m bench.run_all

# chalice package needs an AWS region even offline: a fresh machine has none configured, so the
# settings' region (SKILLHARBOR_REGION, else AWS_DEFAULT_REGION, else us-east-1) is the default.
TEMPLATE_DIR ?= build
template: $(STAMP)  ## the deployable SAM/CloudFormation template in build/ (TEMPLATE_DIR), linted
	$(PY) -m infra.template $(TEMPLATE_DIR)/merge-template.json
	AWS_DEFAULT_REGION="$$($(PY) -c 'from chalicelib.settings import get_settings; print(get_settings().region)')" \
	  $(VENV)/bin/chalice package --stage dev --merge-template $(TEMPLATE_DIR)/merge-template.json $(TEMPLATE_DIR)/package
	$(VENV)/bin/cfn-lint $(TEMPLATE_DIR)/package/sam.json

import-names: $(STAMP)  ## rebuild chalicelib/skills/data/import_names.json from the wheels of tools/import_names_packages.txt
	$(PY) tools/build_import_names.py

# The scan's embedded advisory snapshot (chalicelib/scanning/data/advisory-db.tar.xz), refreshed from
# FROM: a directory, a zip or tar of OSV records, or a URL (default: the OSV.dev PyPI export).
ADVISORY_ARGS = $(if $(FROM),--from "$(FROM)") $(if $(COMMIT),--commit "$(COMMIT)") \
                $(if $(UPSTREAM),--upstream "$(UPSTREAM)") $(if $(LICENCE),--licence "$(LICENCE)")
advisories: $(STAMP)  ## refresh the embedded advisory snapshot: make advisories [FROM=dir|zip|url] [COMMIT=sha] [LICENCE=file]
	$(PY) -m chalicelib.scanning.advisory_snapshot $(strip $(ADVISORY_ARGS))

clean:
	rm -rf build .pytest_cache .hypothesis
