# berth: `make run` installs everything and starts the daemon; `make test` installs and runs the suite.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
# What the daemon needs (make run), what the tests add (make test), and the benchmark peers.
# tini: its static build (/usr/bin/tini-static) is the docker-init of `docker run --init`.
# haproxy: the ELBv2 data plane (one master-worker HAProxy per daemon, berth.elb.haproxy).
RUN_PACKAGES := crun runc conmon containernetworking-plugins iptables iproute2 busybox-static \
                python3 python3-venv python3-dev procps util-linux tini haproxy
# awscli: Debian's AWS CLI v2 (2.9), the one with `aws logs tail`; the venv's awscli is v1.
TEST_PACKAGES := skopeo umoci jq curl openssl docker-compose docker-registry awscli
PEER_PACKAGES := docker.io docker-registry wrk
ROOT ?= /var/lib/berth
RUN_ROOT ?= /run/berth
DOCKER_HOST_SOCK ?= unix:///run/berth/docker.sock
PYTEST_ARGS ?=

.PHONY: install apt apt-test venv run test unit bench-deps bench bench-registry clean

install: apt venv

# Installs the missing ones among $(1). Checking dpkg each time is cheap and notices a removed
# package. A temporary policy-rc.d keeps packages with services (docker-registry, docker.io) from
# starting them: berth's tests and benchmarks run their own private instances.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  own_policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; own_policy=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  rc=$$?; [ -n "$$own_policy" ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi
endef

apt:
	$(call apt_install,$(RUN_PACKAGES))

apt-test:
	$(call apt_install,$(TEST_PACKAGES))

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | apt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

run: install
	$(VENV)/bin/berth daemon --root $(ROOT) --run-root $(RUN_ROOT) --docker-host $(DOCKER_HOST_SOCK)

# The engine, the APIs and every package written since the orchestration work began are held to mypy --strict;
# so is the daemon's wiring, which is where the engine's services are checked against the Protocols
# their consumers declare (api/docker/backend.py, agent/engine_adapter.py).
STRICT := src/berth/state src/berth/scheduler src/berth/ecs src/berth/ecr src/berth/elb src/berth/controllers src/berth/agent \
          src/berth/secrets src/berth/images src/berth/logs src/berth/builder src/berth/engine src/berth/api src/berth/daemon

test: install apt-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy --strict $(STRICT)
	$(VENV)/bin/python -m pytest -q -ra $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/python -m pytest -q tests/unit

bench-deps: install apt-test
	$(call apt_install,$(PEER_PACKAGES))

bench: bench-deps
	$(VENV)/bin/python bench/run_latency.py
	$(VENV)/bin/python bench/density.py
	$(VENV)/bin/python bench/build.py
	$(VENV)/bin/python bench/registry.py
	$(VENV)/bin/python bench/ecs.py
	$(VENV)/bin/python bench/elb.py
	$(VENV)/bin/python bench/logs.py
	$(VENV)/bin/python bench/compose.py

# skopeo push/pull: berth's registry vs Debian's docker-registry.
bench-registry: bench-deps
	$(VENV)/bin/python bench/registry.py

clean:
	rm -rf $(VENV)
