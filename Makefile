# dpe — make targets. `make test` is what CI runs (.ci/run).
GO ?= go
export CGO_ENABLED ?= 1

.PHONY: test vet build bench chaos fmt

test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/dpe ./cmd/dpe

fmt:
	gofmt -w .
