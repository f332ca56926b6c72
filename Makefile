# wp502: one entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
N ?= 3
SITES ?= 1
# The Debian release of `make lab`'s targets: bookworm (Debian 12) or trixie (Debian 13).
DISTRO ?= bookworm
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv docker images lab lab-down lab-status lab-reset demo test unit browser-test lint lab-test molecule bench bench-logscan bench-report bench-emergency bench-audit compat clean collection sanity

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/ansible-playbook: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/ansible-playbook ## create .venv with the pinned Python dependencies

docker: ## install and start a Docker engine when none answers (Debian, root)
	@docker info >/dev/null 2>&1 || lab/install-docker.sh

images: venv docker ## build (or reuse) the lab target images, Debian 12 (wp502-lab:nginx, :apache) and 13 (:nginx-trixie, :apache-trixie)
	$(BIN)/python lab/labctl.py build
	$(BIN)/python lab/labctl.py build --distro trixie

lab: venv docker ## start the lab fleet (N hosts, default 3; SITES WordPress sites each, default 1; DISTRO bookworm or trixie) and write inventories/lab*/
	$(BIN)/python lab/labctl.py up --hosts $(N) --sites $(SITES) --distro $(DISTRO)

lab-down: ## remove the lab fleet
	$(PYTHON) lab/labctl.py down

lab-status: ## show the lab fleet and what each host answers
	$(PYTHON) lab/labctl.py status

lab-reset: venv ## put every lab host back to its healthy baseline
	$(BIN)/ansible-playbook playbooks/lab-break.yml -e wp502_lab_fault=none

demo: lab ## the main job on the built-in lab: break three hosts and show what they answer
	$(BIN)/ansible-playbook playbooks/lab-demo.yml

test: venv docker ## the test suite: lint, unit tests, the collection and its ansible-test sanity, the 2.21 controller, the report in Chromium, lab tests, Molecule
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) collection
	$(MAKE) browser-test
	@# The images (mostly downloads), the 2.21 controller and ansible-test touch nothing of each other's:
	@# side by side, once the Debian 13 base they share exists (each would otherwise debootstrap it).
	$(BIN)/python lab/labctl.py base-image --distro trixie
	$(MAKE) -j3 --output-sync=target images compat sanity
	$(MAKE) lab-test
	$(MAKE) molecule

lint: venv ## yamllint, ruff, ansible-lint (production), playbook syntax, validate-modules and ansible-doc on ansible-core 2.19 and 2.21
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	@mkdir -p artifacts/lint
	$(BIN)/ansible-lint > artifacts/lint/ansible-lint.log 2>&1; rc=$$?; cat artifacts/lint/ansible-lint.log; test $$rc -eq 0
	@# A deprecation here passes ansible-lint on 2.19 and fails make compat (2.21): fail it here, where it is seen first.
	@! grep -n '\[DEPRECATION WARNING\]' artifacts/lint/ansible-lint.log || \
	  { echo "make lint: ansible-lint printed the deprecation warning above (make compat fails on it): fix it"; exit 1; }
	for p in playbooks/*.yml; do $(BIN)/ansible-playbook --syntax-check -i localhost, "$$p" || exit 1; done
	$(BIN)/python tests/sanity/validate_modules.py
	tests/sanity/validate_modules_newest.sh

unit: venv ## unit tests (no Docker needed)
	$(BIN)/pytest -q tests/unit

collection: venv ## build the collection wp502.wp502 (artifacts/collection/), install it in a temp dir, run a smoke playbook outside the repo
	$(BIN)/python tools/collection.py smoke

sanity: venv ## build and install wp502.wp502, then ansible-test sanity (no containers) and units in the installed copy
	$(BIN)/python tools/collection.py sanity

browser-test: venv ## the HTML report in headless Chromium (screenshot in artifacts/browser/)
	$(BIN)/pytest -q tests/browser

lab-test: venv ## every lab fault induced for real on fresh containers
	$(BIN)/pytest -q --durations=15 tests/lab

compat: venv docker ## lint, unit tests and syntax checks on ansible-core 2.21 / Python 3.13 in a Debian 13 container (logs in artifacts/compat/)
	$(BIN)/python tests/compat/compat.py $(COMPAT_ARGS)

# Scenarios are independent (own containers, own ephemeral dirs): MOLECULE_JOBS of them at a time.
MOLECULE_JOBS ?= 3
molecule: venv ## Molecule: default + one scenario per failure mode, MOLECULE_JOBS at a time (logs in artifacts/molecule/)
	@mkdir -p artifacts/molecule
	@ls molecule/*/molecule.yml | cut -d/ -f2 | xargs -P $(MOLECULE_JOBS) -I{} sh -c \
	  'if $(BIN)/molecule test -s {} > artifacts/molecule/{}.log 2>&1; then echo "molecule {}: passed"; \
	   else echo "molecule {}: FAILED (artifacts/molecule/{}.log)"; tail -n 80 artifacts/molecule/{}.log; exit 1; fi'

clean: lab-down ## remove the lab and the virtualenv
	rm -rf $(VENV)

# make bench runs every part in one run; bench-logscan, bench-report, bench-emergency and bench-audit run one alone.
bench: venv docker images ## every benchmark in one run: log scan vs grep, fleet report at 100/1000/5000 hosts, emergency ladder, audit (per-host collection idle/saturated, 20-host fleet) vs ping (writes docs/benchmarks.md; needs ~7.5 GB in .bench/ and Docker)
	$(BIN)/python bench/bench_logscan.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_report.py $(BENCH_REPORT_ARGS)
	$(BIN)/python bench/bench_emergency.py $(BENCH_EMERGENCY_ARGS)
	$(BIN)/python bench/bench_audit.py $(BENCH_AUDIT_ARGS)

bench-logscan: venv ## benchmark wp502_log_scan against grep (needs ~7.5 GB in .bench/)
	$(BIN)/python bench/bench_logscan.py $(BENCH_ARGS)

bench-report: venv ## benchmark the fleet report at 100, 1000 and 5000 hosts
	$(BIN)/python bench/bench_report.py $(BENCH_REPORT_ARGS)

bench-emergency: venv docker images ## benchmark the emergency ladder: probes per culprit, heal time per fault, fpm_down vs a bare restart
	$(BIN)/python bench/bench_emergency.py $(BENCH_EMERGENCY_ARGS)

bench-audit: venv docker images ## benchmark the audit against ansible -m ping: per-host collection on an idle and a saturated host, then a 20-host lab fleet (BENCH_AUDIT_ARGS, e.g. --parts collection --hosts 10)
	$(BIN)/python bench/bench_audit.py $(BENCH_AUDIT_ARGS)
