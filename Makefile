# Tests start real ZooKeeper servers (see zktest). scripts/ensure-zookeeper.sh
# installs Debian's zookeeper package if neither it, ZOOKEEPER_HOME nor
# ZKTEST_SERVERS is available; ensure-postgres.sh PostgreSQL for package
# fence; ensure-interop.sh kazoo, Curator and a JDK for internal/interop.

GO ?= go

.PHONY: test demo bench vet fmt fuzz

# Fuzz targets of every parser of outside input (docs/SECURITY.md), each run
# for FUZZTIME; their seed corpora and any crash found are in testdata/fuzz.
# -fuzzminimizetime 0: no minimizing of new inputs, which can outlast
# -fuzztime and make go test report "context deadline exceeded" (a crash is
# still written, unminimized).
FUZZTIME ?= 15s
FUZZ_TARGETS = ./recipes:FuzzParseToken ./recipes:FuzzValidatePath ./recipes:FuzzServerAddress \
	./fence:FuzzFromHeader ./internal/wire:FuzzFrames ./internal/contend:FuzzParse \
	./internal/contend:FuzzAhead

# The library, then the tools' module (cmd/: the CLI and the verification suite).
test:
	./scripts/ensure-zookeeper.sh && ./scripts/ensure-postgres.sh && { ./scripts/ensure-interop.sh || echo "make test: Curator or kazoo missing: internal/interop skips (fails under ZKTEST_REQUIRE=1)"; } && $(GO) test -race -count=1 -timeout 20m ./... && $(GO) -C cmd test -race -count=1 -timeout 20m ./... && $(MAKE) fuzz FUZZTIME=10s

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		GO=$(GO) ./scripts/fuzz-one.sh $${t%%:*} $${t#*:} $(FUZZTIME); \
	done

demo:
	./scripts/ensure-zookeeper.sh && $(GO) -C cmd run ./zkrecipes demo

bench:
	./scripts/bench.sh

vet:
	$(GO) vet ./... && $(GO) -C cmd vet ./...

fmt:
	gofmt -w .
