# Meshwork. `make demo` and `make test` are the two set-up commands.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin
TESTOUT   := testout
PKGS      := ./...
# TEST_TIMEOUT bounds each package's run in make test: a hang guard, not a
# speed bar (test-loaded raises it: the same work on a machine whose CPUs
# are taken by burners takes about twice as long).
TEST_TIMEOUT ?= 18m
STATICCHECK_VERSION := v0.6.1

.PHONY: all build demo test test-loaded fuzz bench soak chaos lint release clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## demo: two daemons on loopback, paired with an invite, devices listed from both sides
demo: build
	bash node/e2e/demo.sh $(BIN)

## test: the whole suite under the race detector, plus short fuzz runs of every decoder
test:
	mkdir -p $(TESTOUT)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS) 2>&1 | tee $(TESTOUT)/test.log; exit $${PIPESTATUS[0]}
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	@echo "packages: $$(grep -c '^ok ' $(TESTOUT)/test.log) passed, $$(grep -c '^FAIL\s' $(TESTOUT)/test.log) failed"

## test-loaded: make test with two CPU-burning processes beside it (killed when it ends, however it ends)
test-loaded:
	@set -e; burn() { while :; do :; done; }; \
	burn & b1=$$!; burn & b2=$$!; \
	trap 'kill $$b1 $$b2 2>/dev/null; wait $$b1 $$b2 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "test-loaded: make test beside two CPU burners (pids $$b1 $$b2)"; \
	$(MAKE) --no-print-directory test TEST_TIMEOUT=$(or $(filter-out 18m,$(TEST_TIMEOUT)),36m)

## fuzz: run every decoder fuzz target for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    log=$(TESTOUT)/fuzz-$$f.log; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > $$log 2>&1; then \
	      if grep -q 'Failing input written' $$log; then cat $$log; exit 1; fi; \
	      echo "  fuzz engine failed without a finding (e.g. 'context deadline exceeded'); retrying once"; \
	      $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > $$log 2>&1 || { cat $$log; exit 1; }; \
	    fi; \
	  done; \
	done

## bench: benchmarks, one package at a time (they measure the machine); results in testout/bench.txt
bench:
	mkdir -p $(TESTOUT)
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 180m ./... | tee $(TESTOUT)/bench.txt

## soak: long acceptance runs; MESHWORK_SOAK=1 raises their sizes and repetitions (e.g. 50 fresh members of a folder holding 512 MiB,
## 20 NAT-lab rounds of each hole-punch retry scenario, 1,000 chaos seeds with 4-5 devices, more operations and bigger files)
CHAOS_SOAK_SEEDS ?= 1000
CHAOS_PAR ?= 3
soak:
	MESHWORK_SOAK=1 $(GO) test -count=1 -timeout 180m -run 'TestFreshMemberLearnsFolders|TestReconnectedMemberLearnsFolders|TestNATLabPunchRelayLate|TestNATLabPunchAfterRelayRestart' ./node/e2e/
	mkdir -p $(TESTOUT)
	MESHWORK_SOAK=1 MESHWORK_CHAOS_SEEDS=$(CHAOS_SOAK_SEEDS) MESHWORK_CHAOS_PAR=1 $(GO) test -count=1 -timeout 1200m -parallel $(CHAOS_PAR) \
	  -run 'TestChaos$$' ./node/e2e/ -v 2>&1 | tee $(TESTOUT)/chaos-soak.log | grep -E '^\s*--- (FAIL|PASS)|passed in|replay:'; exit $${PIPESTATUS[0]}

## chaos: SEEDS random schedules (default 20, from seed FROM, default 1) against real daemons, in MODE big (bigger files,
## more operations); SEED=S replays one seed (add MODE=test for a seed of make test); PAR=N runs N seeds at once. A failure prints the schedule.
SEEDS ?= 20
FROM  ?= 1
MODE  ?= big
chaos:
	mkdir -p $(TESTOUT)
	MESHWORK_CHAOS_MODE=$(MODE) $(if $(PAR),MESHWORK_CHAOS_PAR=1) $(GO) test -count=1 -timeout 600m $(if $(PAR),-parallel $(PAR)) -run 'TestChaos$$' ./node/e2e/ \
	  $(if $(SEED),-chaos.seed=$(SEED),-chaos.seeds=$(SEEDS) -chaos.from=$(FROM)) -v 2>&1 \
	  | tee $(TESTOUT)/chaos.log | grep -E '^\s*--- (FAIL|PASS)|passed in|replay:|invariant'; exit $${PIPESTATUS[0]}

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

release:
	bash deploy/release.sh

clean:
	rm -rf $(BIN) dist $(TESTOUT)
