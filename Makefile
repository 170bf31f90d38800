# firebreak — see README.md. `make demo` and `make test` are the two set-up commands.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/firebreak
STATICCHECK_VERSION := v0.8.2
GOBIN    := $(shell $(GO) env GOPATH)/bin
TESTTIMEOUT ?= 20m

.PHONY: all build test deps lint unit fuzz bench demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/firebreak

# deps installs everything the tests need (Debian packages, staticcheck).
deps:
	./scripts/install-test-deps.sh
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

unit:
	$(GO) test -race -timeout $(TESTTIMEOUT) ./...

test: deps lint unit

# fuzz runs every fuzz target briefly (FUZZTIME each); the seed corpora also
# run as ordinary tests in `make test`.
FUZZTIME ?= 20s
fuzz:
	./scripts/fuzz-all.sh $(FUZZTIME)

# bench runs the long benchmarks; results are recorded in docs/benchmarks.md.
bench: build
	./bench/run-all.sh

demo: build
	./scripts/demo.sh

clean:
	rm -rf bin
