# Cinerec: `make demo` runs the system on the embedded services, `make test` runs the tests.
# Both install everything they need first: Python packages from PyPI into .venv, and the engines
# (Apache Kafka, Elasticsearch, Spark's Kafka connector) from Maven Central into .engines with
# deployment/engines/pom.xml. Java 17+ and Maven must be on the machine; both are checked.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CINEREC := $(BIN)/cinerec
DATA ?=
DURATION ?=
export PYSPARK_PYTHON := $(abspath $(BIN)/python)

ENGINES := .engines
ENGINE_POMS := $(wildcard deployment/engines/pom.xml deployment/engines/*/pom.xml)

.PHONY: install check-java check-maven demo test test-chaos browser monitoring lint clean services-down notebooks docs \
	compose-setup images compose-up compose-down actionlint

install: $(VENV)/.installed $(ENGINES)/.fetched

$(ENGINES)/.fetched: $(ENGINE_POMS)
	@$(MAKE) --no-print-directory check-java check-maven
	@rm -rf $(ENGINES)
	@echo "fetching Kafka, Elasticsearch and Spark's Kafka connector from Maven Central into $(ENGINES)/"
	@mvn -q -B -f deployment/engines/pom.xml package > $(ENGINES).log 2>&1 || { \
	  echo "Maven could not fetch the engines (is Maven Central reachable?); last lines of $(ENGINES).log:"; \
	  grep -E "ERROR|Could not" $(ENGINES).log | head -n 3; exit 1; }
	@touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(MAKE) --no-print-directory check-java
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

check-java:
	@java="$${JAVA_HOME:+$$JAVA_HOME/bin/}java"; \
	if ! command -v "$$java" >/dev/null 2>&1; then \
	  echo "Java 17 or newer is required by Spark 4 and was not found."; \
	  echo "Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME."; \
	  exit 1; fi; \
	major=$$("$$java" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1); \
	if [ "$${major:-0}" -lt 17 ]; then \
	  echo "Java $$major found; Spark 4 needs Java 17 or newer (apt-get install openjdk-17-jre-headless)."; \
	  exit 1; fi

check-maven:
	@command -v mvn >/dev/null 2>&1 || { \
	  echo "Maven is required to fetch the engines from Maven Central (apt-get install maven)."; exit 1; }

demo: install monitoring
ifneq ($(strip $(DATA)),)
	$(CINEREC) data check $(DATA)
endif
	$(CINEREC) demo $(if $(strip $(DATA)),--data $(DATA)) $(if $(strip $(DURATION)),--duration $(DURATION)) \
	  $(if $(strip $(LOOP)),--loop)

services-down: install
	$(CINEREC) services down

test: install browser monitoring compose-setup
	$(BIN)/python -m pytest

# The browser test drives Debian's chromium (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || { \
	    echo "could not install chromium (apt-get, as root): the browser test will be skipped"; }; }

# The demo runs Debian's Prometheus and Alertmanager; the monitoring tests run promtool and Alertmanager.
monitoring:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus and prometheus-alertmanager for the monitoring tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus \
	      prometheus-alertmanager >/dev/null; } || { \
	    echo "could not install prometheus (apt-get, as root): no monitoring in the demo, its tests skipped"; }; }

test-chaos: install
	$(BIN)/python -m pytest -m chaos

# The notebooks executed into var/notebooks/ (on CINEREC_NOTEBOOK_DATA, else ml-latest-small beside the
# repository, else the synthetic world); `make docs` then builds the site with their outputs.
notebooks: install
	$(BIN)/python notebooks/run.py

docs: notebooks
	$(BIN)/mkdocs build --strict

lint: install actionlint
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(ACTIONLINT) .github/workflows/*.yml

# actionlint checks the workflows; Go installs it into .tools/ (`go install`, from the Go module proxy).
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := .tools/bin/actionlint
actionlint: $(ACTIONLINT)
$(ACTIONLINT):
	@command -v go >/dev/null 2>&1 || { echo "Go is required to install actionlint (apt-get install golang-go)."; exit 1; }
	GOBIN=$(abspath .tools/bin) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# The production stack (deployment/docker-compose.yml) with podman on this machine: compose-setup makes the
# machine able to (podman, runc, podman-compose, the local Debian base: deployment/podman-setup.sh; part of
# `make test`, whose tests/test_compose_stack.py skips and says why when it could not); images builds
# every image of the stack from that base; compose-up/-down run it (deployment/compose.local.yml).
# CINEREC_API_KEYS: the API's write keys (a fixed local one unless given).
PODMAN_COMPOSE := .tools/podman-compose/bin/podman-compose
COMPOSE := $(PODMAN_COMPOSE) -f deployment/docker-compose.yml -f deployment/compose.local.yml
# What the compose commands get (never exported to the rest: the tests must not see an API key).
LOCAL_BASE := localhost/debian-base:bookworm
CINEREC_API_KEYS ?= local-compose-key
ALERT_SECRETS_DIR ?= $(abspath var/compose-secrets)
COMPOSE_ENV := BASE=$${BASE:-$(LOCAL_BASE)} JAVA_BASE=$${JAVA_BASE:-$(LOCAL_BASE)} \
  DEBIAN_BASE=$${DEBIAN_BASE:-$(LOCAL_BASE)} CINEREC_API_KEYS=$(CINEREC_API_KEYS) ALERT_SECRETS_DIR=$(ALERT_SECRETS_DIR) \
  ENGINES_DIR=$(abspath $(ENGINES))
NICE := nice -n 19 ionice -c3

compose-setup:
	@deployment/podman-setup.sh || echo "the machine cannot run the compose stack: tests/test_compose_stack.py will skip"

images: install compose-setup
	$(COMPOSE_ENV) $(NICE) $(COMPOSE) build

compose-up: images
	@mkdir -p $(ALERT_SECRETS_DIR)
	@# Placeholders unless given (the local run sends no alerts anywhere): Alertmanager needs the files.
	@[ -f $(ALERT_SECRETS_DIR)/smtp-password ] || : > $(ALERT_SECRETS_DIR)/smtp-password
	@[ -f $(ALERT_SECRETS_DIR)/slack-webhook-url ] || echo http://127.0.0.1:9/unset > $(ALERT_SECRETS_DIR)/slack-webhook-url
	@key='$(CINEREC_API_KEYS)'; printf '%s' "$${key%%,*}" > $(ALERT_SECRETS_DIR)/cinerec-api-key
	$(COMPOSE_ENV) $(NICE) $(COMPOSE) up -d

compose-down:
	$(COMPOSE_ENV) $(COMPOSE) down --volumes

clean:
	-$(CINEREC) services down --cluster
	-$(CINEREC) services down
	-$(BIN)/python -c "from cinerec.core.settings import load_settings; from cinerec.ops.services.engines import elasticsearch_dir; \
	  import shutil; d = elasticsearch_dir(load_settings()); d.name != 'elasticsearch' and shutil.rmtree(d, True)"
	rm -rf var $(ENGINES) $(ENGINES).log
