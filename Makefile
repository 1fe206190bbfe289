# handoff: `make run` starts the system locally, `make test` runs the whole suite.
GO       ?= go
STATE    ?= .state
ADDR     ?= 127.0.0.1:7070

.PHONY: run test fmt-check vet staticcheck unit fuzz build clean

## run: start the local Entra ID emulator (later: the whole stack) in the foreground.
run:
	$(GO) run ./cmd/entra-emulator -addr $(ADDR) -state-dir $(STATE)/entra

## test: formatting, vet, staticcheck, then every test with the race detector.
test: fmt-check vet staticcheck unit

fmt-check:
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './web/*')); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

unit:
	$(GO) test -race -timeout 10m ./...

## build: the binaries for this platform, in bin/.
build:
	$(GO) build -o bin/ ./cmd/...

clean:
	rm -rf bin dist
