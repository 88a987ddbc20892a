# berth: `make run` installs everything and starts the daemon; `make test` installs and runs the suite.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
APT_PACKAGES := crun runc conmon containernetworking-plugins iptables iproute2 busybox-static \
                python3 python3-venv python3-dev skopeo umoci jq curl procps util-linux \
                docker-compose \
                docker-registry
ROOT ?= /var/lib/berth
RUN_ROOT ?= /run/berth
DOCKER_HOST_SOCK ?= unix:///run/berth/docker.sock
PYTEST_ARGS ?=

.PHONY: install apt venv run test unit bench-deps bench bench-registry clean

install: apt venv

# Checking dpkg each time is cheap and keeps a removed package from going unnoticed.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | apt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

run: install
	$(VENV)/bin/berth daemon --root $(ROOT) --run-root $(RUN_ROOT) --docker-host $(DOCKER_HOST_SOCK)

test: install
	$(VENV)/bin/python -m pytest -q -ra $(PYTEST_ARGS)

unit: install
	$(VENV)/bin/python -m pytest -q tests/unit

bench-deps: install
	@dpkg -s docker.io >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io)
	@dpkg -s docker-registry >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry)

bench: bench-deps
	$(VENV)/bin/python bench/run_latency.py
	$(VENV)/bin/python bench/build.py

# skopeo push/pull: berth's registry vs Debian's docker-registry (in APT_PACKAGES).
bench-registry: bench-deps
	$(VENV)/bin/python bench/registry.py

clean:
	rm -rf $(VENV)
