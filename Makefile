# Sluice build and test entry points. `make test` is what CI runs (.ci/run).
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 5s
CACHE    ?= $(CURDIR)/.cache
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/sluicelog/sluice/internal/version.Version=$(VERSION)

export SLUICE_CACHE := $(CACHE)

# golangci-lint is built from its Go module (the module proxy is the only
# network make test may use) once per version, into the cache.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CACHE)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build test check unit race fuzz-smoke bench run clean vulncheck

all: build

## build: compile every binary into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## run: start server, agent and mocklog on this machine (embedded store); KEEP=1 keeps an earlier run's data
# The quickstart is built and run as a binary, not with `go run`, which
# exits 1 when Ctrl-C reaches it too (make then printed "Error 1" after a
# clean stop). make itself still ends by the SIGINT, as any interrupted make.
run:
	@test -x $(BIN)/sluice-server || echo "make run: first build of sluice-server, sluice-agent and mocklog; with a cold Go cache (modules to download, DuckDB's C++ library to compile) this takes several minutes, later builds seconds ..."
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/... ./hack/quickstart
	$(BIN)/quickstart --bin $(BIN) $(if $(KEEP),--keep) $(QUICKSTART_FLAGS)

## test: everything CI runs: formatting, vet, lint, unit + integration tests (fuzz seed corpora included), race detector
test: check unit race

## check: gofmt, go vet, go mod tidy, golangci-lint (.golangci.yml)
check: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy (diff: go mod tidy -diff)"; exit 1; }
	$(GOLANGCI_LINT) run --timeout 20m ./...

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) from its Go module into $(CACHE)/tools (once; ~4 min on a cold Go cache)"
	@mkdir -p $(CACHE)/tools/.gobin
	GOBIN=$(CACHE)/tools/.gobin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(CACHE)/tools/.gobin/golangci-lint $@

## vulncheck: govulncheck v1.9.0 against the Go vulnerability database as of VULNDB_VERSION (golang.org/x/vulndb
## from the module proxy, indexed once into the cache: vuln.go.dev is not reachable from CI). Not in make test
## yet: it reports fixes of go1.26.9/1.26.10 and of prometheus/prometheus (via the Log Service Go SDK) to take first.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB := $(CACHE)/vulndb-$(VULNDB_VERSION)
vulncheck:
	@test -f $(VULNDB)/index/db.json || { echo "indexing golang.org/x/vulndb@$(VULNDB_VERSION) into $(VULNDB) (once; ~5 min cold)"; \
	  $(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION) && \
	  $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns $$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv -out $(VULNDB); }
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db file://$(VULNDB) ./...

# Integration tests that need real parts (kube-apiserver/etcd, Chromium) get
# them from hack/ensure-*.sh; SLUICE_REQUIRE_ALL makes such tests fail
# instead of skip when a part is missing.
unit:
	./hack/ensure-test-deps.sh
	SLUICE_REQUIRE_ALL=1 $(GO) test -count=1 -timeout 40m ./...

## race: the race detector over the agent, wire format, config and store packages (their unit tests;
## the integration-heavy packages run once, in unit)
RACE_PKGS := ./agent/... ./protocol/... ./logconfig/... ./server/store ./server/store/duckdb \
	./server/store/shardlog ./server/store/wal
race:
	SLUICE_REQUIRE_ALL=1 $(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

## fuzz-smoke: random-walk every Go fuzz target for FUZZTIME each (not part of make test: see docs/testing.md)
fuzz-smoke:
	FUZZTIME=$(FUZZTIME) ./hack/fuzz-smoke.sh

## bench: Go micro-benchmarks (see docs/benchmarks.md for end-to-end runs)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)

.PHONY: bench-agent
## bench-agent: end-to-end sluice-agent benchmark (1 GiB mocklog files cached in .cache/, null output; see docs/benchmarks.md)
bench-agent:
	./hack/bench-agent.sh

.PHONY: bench-e2e
## bench-e2e: end-to-end delivery benchmark, 1 GiB nginx file (cached in .cache/bench) through sluice-agent into sluice-server; MiB/s, CPU-s/GiB and peak RSS per process (see docs/benchmarks.md)
bench-e2e:
	./hack/bench-e2e.sh

.PHONY: reliability
## reliability: the agent's loss tests run longer than in make test (crash loop 2 min per rotation style, rotation storm 1 min, 5 full-disk rounds, 100 kills in fast rotation; ~12 min; see docs/testing.md)
reliability:
	SLUICE_E2E_CRASH_FOR=$${SLUICE_E2E_CRASH_FOR:-120s} SLUICE_E2E_CONTROL_FOR=$${SLUICE_E2E_CONTROL_FOR:-30s} \
	SLUICE_E2E_STORM_FOR=$${SLUICE_E2E_STORM_FOR:-60s} SLUICE_E2E_FULL_DISK_ROUNDS=$${SLUICE_E2E_FULL_DISK_ROUNDS:-5} \
	  $(GO) test -count=1 -v -timeout 60m -run 'TestCrashLoop|TestRotationStorm|TestFullDiskBuffer|TestRemovedUnreadFileIsReported' ./e2e/delivery/
	SLUICE_E2E_KILLS=$${SLUICE_E2E_KILLS:-100} $(GO) test -count=1 -v -timeout 60m -run 'TestCrashDuringFastRotation' ./e2e/
