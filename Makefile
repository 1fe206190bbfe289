# handoff: `make run` starts the system locally, `make test` runs the whole suite.
GO       ?= go
STATE    ?= .state
APPS     ?= task notification audit

.PHONY: run demo test prereqs fmt-check vet staticcheck unit fuzz bench bench-load build package clean tools web browser-test deploy-check cover mutate mutate-entraauth mutate-downstream mutate-store-sqlite mutate-store-table

## run: the whole system locally (emulators + the three Function Apps) until Ctrl-C or
## SIGTERM. scripts/run.sh builds bin/devstack and execs it (make's child becomes devstack
## itself, so the SIGTERM make passes on reaches it): it checks the ports, rebuilds the SPA
## when web/ changed (with Node.js; served at http://localhost:3000), builds the handlers and
## starts everything. A stopped devstack exits 0; make then ends by the signal it got.
run:
	@exec env GO='$(GO)' scripts/run.sh run

## web: the SPA (web/) built into web/dist; needs Node.js and npm. (make run rebuilds it
## itself when web/ changed.)
web:
	@scripts/ensure-node.sh
	cd web && npm ci --no-audit --no-fund && npm run build

## browser-test: the SPA in Chromium (CHROMIUM=, else the first of chromium, chromium-browser,
## google-chrome; scripts/ensure-chromium.sh) with MSAL.js against a devstack of its own
## (ports 17070-17074 and localhost:3000, state in a temp dir; web/tests/devstack.go).
browser-test:
	@scripts/ensure-node.sh
	@scripts/ensure-chromium.sh >/dev/null
	cd web && npm ci --no-audit --no-fund
	cd web && VITE_AUTHORITY=https://127.0.0.1:17070/organizations VITE_KNOWN_AUTHORITY=127.0.0.1:17070 \
	  VITE_TASK_API=http://127.0.0.1:17071 npx vite build --outDir dist-test --emptyOutDir
	@set -e; tmp=$$(mktemp -d); log=$$tmp/devstack.log; \
	$(GO) build -o $$tmp/devstack-bt web/tests/devstack.go; \
	$$tmp/devstack-bt -state $$tmp/state -spa web/dist-test -no-fabrikam-notify-consent >$$log 2>&1 & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null || true; rm -rf $$tmp' EXIT; \
	for i in $$(seq 1 180); do \
	  if grep -q '^ready:' $$log; then break; fi; \
	  if ! kill -0 $$pid 2>/dev/null; then echo "devstack exited:"; tail -20 $$log; exit 1; fi; \
	  sleep 1; \
	done; \
	grep -q '^ready:' $$log || { echo "devstack did not become ready:"; tail -20 $$log; exit 1; }; \
	chromium=$$(scripts/ensure-chromium.sh); \
	cd web && DEVSTACK_PID=$$pid STATE_DIR=$$tmp/state CHROMIUM=$$chromium node tests/browser.test.mjs \
	  || { echo "devstack log: $$log (tail below)"; tail -30 $$log; exit 1; }

## demo: sign in as alice, create a task, print tokens A, B and C decoded side by side, then
## the create's trace as a tree (see "See a trace locally" in docs/operations.md).
demo:
	@exec env GO='$(GO)' scripts/run.sh demo

## test: formatting, vet, staticcheck, every test with the race detector (Azurite installed
## first: make tools), a short fuzz, and the SPA in Chromium. It checks its prerequisites
## first (prereqs): a missing one stops it at once with one line naming it.
test: prereqs fmt-check vet staticcheck unit fuzz browser-test

## prereqs: Node.js and npm, and a Chromium; as root on Debian/Ubuntu, installed with apt-get.
prereqs:
	@scripts/ensure-node.sh
	@scripts/ensure-chromium.sh >/dev/null

fmt-check:
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './web/*')); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...
	cd handler && $(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...
	cd handler && $$(cd .. && $(GO) tool -n staticcheck) ./...

unit: tools
	$(GO) test -race -timeout 10m ./...
	cd handler && $(GO) test -race -timeout 10m ./...

## cover: every test with coverage: each package's coverage, then the total (profile in $(STATE)/cover.out).
cover:
	@mkdir -p $(STATE)
	$(GO) test -cover -coverprofile=$(STATE)/cover.out ./...
	cd handler && $(GO) test -cover -coverprofile=../$(STATE)/cover-handler.out ./...
	@echo "total (apps, emulators, tools): $$($(GO) tool cover -func=$(STATE)/cover.out | tail -1 | awk '{print $$NF}')"
	@echo "total (handler module):         $$(cd handler && $(GO) tool cover -func=../$(STATE)/cover-handler.out | tail -1 | awk '{print $$NF}')"

## mutate: mutation testing (gremlins) of the packages whose tests guard security and data, one
## pass at a time: efficacy per pass, surviving (LIVED) and TIMED OUT mutants listed, time taken.
## internal/store runs in two passes, SQLite's files against the SQLite tests and Table's against
## the Table tests (Azurite: make tools), so a mutant runs only the tests that can see it. Slow
## (about an hour on 2 cores), so not part of make test; make mutate-entraauth (etc.) runs one pass.
## Reviewed survivors are in docs/mutation.md. MUTATE_WORKERS=2 for a machine of your own.
MUTATE_WORKERS ?= 1
# A mutant times out after the first run's time by this factor (compiling is in the mutant's time).
MUTATE_TIMEOUT_COEFFICIENT ?= 20
# $(call gremlins,label,package,go test -run pattern,regexps of files excluded, relative to the package[,module dir])
# The handler packages are mutated inside the handler module (their own tests only); gremlins is
# the root module's tool, so its binary is looked up there.
define gremlins
	@set -e; azurite=$(CURDIR)/.tools/node_modules/.bin/azurite-table; \
	if [ -z "$$AZURITE_BIN" ] && [ -x "$$azurite" ]; then export AZURITE_BIN=$$azurite; fi; \
	echo "== $(1)"; start=$$(date +%s); gremlins=$$($(GO) tool -n gremlins); \
	cd $(or $(5),.) && GOFLAGS="$$GOFLAGS -run=$(3)" $$gremlins unleash --workers $(MUTATE_WORKERS) --timeout-coefficient $(MUTATE_TIMEOUT_COEFFICIENT) \
	  --exclude-files '(azuritetest|storetest)/' $(foreach e,$(4),--exclude-files '$(e)') --output-statuses lt $(2); \
	echo "== $(1): $$(( $$(date +%s) - start )) s"
endef
mutate: mutate-entraauth mutate-downstream mutate-store-sqlite mutate-store-table
mutate-entraauth:
	$(call gremlins,handler/entraauth,./entraauth,.,,handler)
mutate-downstream:
	$(call gremlins,handler/downstream,./downstream,.,,handler)
mutate-store-sqlite:
	$(call gremlins,internal/store and internal/store/sqlite,./internal/store,^TestSQLite,^table/)
mutate-store-table:
	$(call gremlins,internal/store/table,./internal/store/table,^TestTable,)

## tools: Azurite (Azure Storage's emulator) into .tools/ for the Table Storage tests; needs Node.js and npm.
AZURITE_VERSION ?= 3.37.0
tools:
	@if ! command -v node >/dev/null 2>&1; then \
	  echo "note: Node.js is not installed, so Azurite is not: the Table Storage tests will be skipped"; \
	elif ! command -v npm >/dev/null 2>&1; then \
	  echo "Node.js is installed but npm is not: install npm to install Azurite (the Table Storage tests fail without it)"; exit 1; \
	elif [ "$$(node -p "require('./.tools/node_modules/azurite/package.json').version" 2>/dev/null)" = "$(AZURITE_VERSION)" ]; then \
	  echo "Azurite $(AZURITE_VERSION) is in .tools/"; \
	else \
	  npm install --prefix .tools --no-save --no-audit --no-fund azurite@$(AZURITE_VERSION); \
	fi

## fuzz: fuzz the token validator briefly (FUZZTIME=1m for longer).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzValidate -fuzztime=$(FUZZTIME) ./internal/libtest/entraauth

## bench: token validation against a bare RSA-2048 verify, measured in the same run: the test
## binary runs the benchmarks in turn, ten rounds, so each round sees the same load; each ratio
## printed is the median of the ten rounds' ratios (a shared, noisy machine moves both alike).
## Validate is a token seen for the first time (full validation), ValidateCached one seen before.
BENCH_PAIRS ?= 10
bench:
	@mkdir -p $(STATE)
	@$(GO) test -c -o $(STATE)/entraauth-bench.test ./internal/libtest/entraauth
	@: > $(STATE)/bench.txt; for i in $$(seq $(BENCH_PAIRS)); do \
	  $(STATE)/entraauth-bench.test -test.run='^$$' -test.bench='^BenchmarkValidate$$' -test.benchmem | grep '^Benchmark' | tee -a $(STATE)/bench.txt; \
	  $(STATE)/entraauth-bench.test -test.run='^$$' -test.bench='^BenchmarkRSAVerify$$' -test.benchmem | grep '^Benchmark' | tee -a $(STATE)/bench.txt; \
	  $(STATE)/entraauth-bench.test -test.run='^$$' -test.bench='^BenchmarkValidateCached$$' -test.benchmem | grep '^Benchmark' | tee -a $(STATE)/bench.txt; \
	done
	@for b in Validate ValidateCached; do \
	  awk -v b="^Benchmark$$b-" '$$0 ~ b {v[++nv]=$$3} /^BenchmarkRSAVerify-/{r[++nr]=$$3} \
	    END{for(i=1;i<=nv;i++) print v[i]/r[i], v[i], r[i]}' $(STATE)/bench.txt | sort -n | \
	  awk -v b=$$b '{q[NR]=$$1; sv+=$$2; sr+=$$3} END{m=(NR%2 ? q[(NR+1)/2] : (q[NR/2]+q[NR/2+1])/2); \
	    printf "%s %.0f ns/op, bare RSA verify %.0f ns/op (means of %d pairs); median ratio %.2f (pairs %.2f to %.2f)\n", b, sv/NR, sr/NR, NR, m, q[1], q[NR]}'; \
	done


## bench-load: the whole system on free loopback ports with the bench directory (24 users, two
## tenants): bounded create and list loads at concurrency 10 and 50, one table of throughput,
## latency, CPU (also in bare RSA verifies), token requests, disk writes and peak memory per
## service, then the first create after a cold start at 100 ms token latency. Linux (/proc).
## PROFILE=task (or notification, audit; a comma-separated list; all) also writes those apps' CPU
## profiles to .state/bench/<app>.cpu.pprof.
## How to read it: docs/performance.md.
PROFILE ?=
bench-load:
	$(GO) run ./cmd/benchload $(if $(PROFILE),-profile $(PROFILE))

## build: the binaries for this platform, in bin/: the three apps' handlers and the commands.
build:
	$(GO) build -o bin/ ./cmd/...
	@for app in $(APPS); do echo "$(GO) build -o bin/$$app ./functions/$$app"; \
	  $(GO) build -o bin/$$app ./functions/$$app || exit 1; done

## package: each app as a Linux zip for zip deployment: dist/<app>.zip (and the tree in dist/<app>/).
package:
	$(GO) run ./cmd/funcpack -out dist $(APPS)

## deploy-check: what `azd up` needs (azd, az and Bicep versions, azd's alpha flag for language: custom,
## the signed-in accounts, a region with Flex Consumption), checked before anything is created; each
## problem one line with its fix. The same script is azd's preprovision hook. See docs/deploy.md.
deploy-check:
	@bash infra/hooks/preflight.sh

clean:
	rm -rf bin dist
