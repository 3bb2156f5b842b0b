# Everything a fresh machine needs (python3, pip, make, git) is installed by these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Go tools built from the wrapper modules in tools/ (go.mod + go.sum pin and verify them).
TOOLS_BIN    := $(HOME)/.cache/stackwright/bin
HELM_VERSION := v3.22.0
HELM         := $(TOOLS_BIN)/helm-$(HELM_VERSION)
REGISTRY     := $(TOOLS_BIN)/registry-v0.22.1
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT   := $(TOOLS_BIN)/actionlint-$(ACTIONLINT_VERSION)

.PHONY: demo test lint typecheck unit crash bench bench-compare clean helm registry kube-tools actionlint mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The main job end to end on the embedded defaults (local SQLite state, local AWS emulator).
demo: $(STAMP) helm
	$(BIN)/python examples/demo.py

## The whole test suite: import contracts, strict typing, then pytest on 2 workers.
test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) kube-tools helm registry actionlint
	$(BIN)/pytest -n 2 -q

## The local cluster's binaries (kube-apiserver, etcd, controllers, kwok), built from the
## Go modules pinned in tools/kube into ~/.cache/stackwright when missing; without Go, a note.
kube-tools:
	tools/kube/build.sh

## Crash safety at length: 8 x 30 `up` runs with SQLite state and 30 with S3 killed with
## SIGKILL, each followed by a recovering `up`; fails unless at least 200 kills held the lock.
crash: $(STAMP)
	CRASH_SEEDS=1,2,3,4,5,6,7,8 CRASH_TRIALS=30 CRASH_MIN_AFTER_LOCK=200 \
		$(BIN)/pytest -n 2 -q -p no:randomly tests/test_crash_recovery.py -k sigkill

## Mutation testing of the core (docs/mutation.md): tools/mutation_run.py runs mutmut on each
## module of tools/mutation_modules.toml on its own, against its own tests, in .mutation/<module>/
## (kept, so a re-run tests only changed functions), then fails unless every module kills at
## least 90% of its mutants. Narrow it: make mutation MODULE=src/stackwright/graph.py MUTANTS='...'
MUTATION_CHILDREN ?= 2
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	$(BIN)/python tools/mutation_run.py --max-children $(MUTATION_CHILDREN) $(addprefix --module ,$(MODULE)) $(foreach m,$(MUTANTS),'$(m)')

## Every benchmark (figures in bench/RESULTS.md), the Pulumi peer (the `peers` extra) included.
bench: $(STAMP) helm
	$(BIN)/python -m pip install --quiet -e '.[dev,peers]'
	$(BIN)/python bench/run.py

## The main figures of the working tree beside a git ref, interleaved: make bench-compare REF=main
bench-compare: $(STAMP)
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<git ref>"; exit 2; }
	$(BIN)/python bench/compare.py $(REF) $(RUNS)

## helm, built once from Helm's Go module (tools/helm) into $(HELM); needs Go 1.24+.
helm:
	@tools/go-tool.sh tools/helm helm.sh/helm/v3/cmd/helm $(HELM) "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)"

## The OCI registry the Helm tests push charts to (go-containerregistry's, tools/registry).
registry:
	@tools/go-tool.sh tools/registry github.com/google/go-containerregistry/cmd/registry $(REGISTRY)

## actionlint (rhysd/actionlint, tools/actionlint), which the generated CI workflows must pass.
actionlint:
	@tools/go-tool.sh tools/actionlint github.com/rhysd/actionlint/cmd/actionlint $(ACTIONLINT) "-X github.com/rhysd/actionlint.version=$(ACTIONLINT_VERSION)"

clean:
	rm -rf $(VENV) mutants .pytest_cache .mypy_cache .import_linter_cache
