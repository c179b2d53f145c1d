# dpe — make targets. `make test` is what CI runs (.ci/run).
GO ?= go
export CGO_ENABLED ?= 1

.PHONY: test vet lint fuzz build bench chaos fmt

test: vet lint fuzz
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# lint: staticcheck at a pinned version (fetched by the go command, nothing to
# install). Findings are fixed, not silenced.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) ./...

# fuzz: every Go fuzz target (a `func Fuzz...` in a _test.go file) for
# FUZZTIME executions each, one `go test -fuzz` per target (the go command fuzzes one
# target of one package at a time). Their seeds and the committed corpora
# under testdata/fuzz/ also run in the plain `go test` of `make test`.
# Minimizing is bounded (FUZZMINIMIZE): by default each new interesting
# input is minimized for up to 60 s, uncounted as execs, which is where a
# template's FuzzParse spent its time (~290 execs shown in 20 s).
# FUZZTIME is a count of executions, not a duration: when a duration runs
# out during a slow input (an expression near its evaluation budget), the go
# command reports the fuzz target as failed with "context deadline exceeded".
FUZZTIME ?= 1000x
FUZZMINIMIZE ?= 200x
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$(dirname $$f) $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$(dirname $$f) >/tmp/dpe-fuzz.$$$$ 2>&1 || { cat /tmp/dpe-fuzz.$$$$; rm -f /tmp/dpe-fuzz.$$$$; exit 1; }; \
		done; \
	done; rm -f /tmp/dpe-fuzz.$$$$

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
