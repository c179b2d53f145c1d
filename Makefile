# dpe — make targets. `make test` is what CI runs (.ci/run).
GO ?= go
export CGO_ENABLED ?= 1

.PHONY: test vet lint build bench chaos fmt

test: vet lint
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# lint: staticcheck at a pinned version (fetched by the go command, nothing to
# install). Findings are fixed, not silenced.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) ./...

build:
	$(GO) build -o bin/dpe ./cmd/dpe

fmt:
	gofmt -w .

# bench: performance numbers of issue #6 on a fresh PostgreSQL database and a
# fresh SQLite file (under 10 minutes). BENCHFLAGS=-quick for a short run;
# DPE_BENCH_POSTGRES names the PostgreSQL server. Writes bench/results.json.
bench:
	$(GO) run ./bench $(BENCHFLAGS)

# chaos: the fault-injection suite of issue #5 (cmd/dpe TestChaos) for 5
# minutes instead of the 45 s of `make test`: servers behind HAProxy,
# processors, workers, schedulers and folder watchers SIGKILLed at random,
# PostgreSQL restarted, a processor frozen past its lease; prints the
# CHAOS lines. Needs haproxy and the PostgreSQL server binaries.
chaos:
	DPE_CHAOS_DURATION=5m $(GO) test -race -count=1 -run TestChaos -v -timeout 30m ./cmd/dpe/
