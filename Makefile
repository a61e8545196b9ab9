MODULE := github.com/resonance-im/resonance
IDL := idl/common.thrift idl/protocol.thrift idl/event.thrift idl/logic.thrift idl/push.thrift

# The integration suite's services: the ones CI runs on this machine.
TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:3306)/test?parseTime=true
TEST_REDIS_ADDR ?= 127.0.0.1:6379
TEST_NATS_URL ?= nats://127.0.0.1:4222

.PHONY: run build test test-integration gen gen-check smoke script-test node-test web-test fuzz-short fuzz fuzz-inbound bench

run:
	go run .

build:
	go build -buildvcs=auto -o bin/resonance .

test:
	go test -race -count=1 ./...

test-integration:
	RESONANCE_TEST_MYSQL_DSN='$(TEST_MYSQL_DSN)' \
	RESONANCE_TEST_REDIS_ADDR='$(TEST_REDIS_ADDR)' \
	RESONANCE_TEST_NATS_URL='$(TEST_NATS_URL)' \
	RESONANCE_TEST_CHAOS=1 \
	go test -race -count=1 ./app/... ./logic/... ./task/... ./internal/route/... \
		./internal/registry/... ./internal/mq/... ./bench/...

# gen regenerates kitex_gen from idl/ with the kitex version pinned in go.mod.
gen:
	for f in $(IDL); do go tool kitex -module $(MODULE) $$f || exit 1; done
	gofmt -w kitex_gen

gen-check: gen
	git diff --exit-code -- kitex_gen
	test -z "$$(git status --porcelain -- kitex_gen)"

# smoke builds the binary, runs it on a scratch data directory and drives it
# with the bench smoke scenario; it fails on any lost, duplicated or reordered
# message.
smoke: build
	./scripts/smoke.sh

# script-test checks that smoke.sh fails, with its server's log, when that
# server cannot start (port taken, bad configuration) instead of running the
# bench against whatever answers.
script-test:
	./scripts/script-test.sh

# node-test runs the Node.js client (coded from docs/protocol.md) over TCP and
# WebSocket against a freshly built server.
node-test:
	./scripts/node-test.sh

# web-test runs the browser SDK's unit tests and the web app in headless
# Chromium (Debian's, installed by the script if missing, driven by
# playwright-core) against a freshly built server; screenshots of the main
# views land in clients/web/test/screenshots.
web-test:
	./scripts/web-test.sh

# fuzz-short gives each decoder fuzz target a few seconds (CI); fuzz runs longer.
FUZZ_TARGETS := ./codec:FuzzDecode ./codec:FuzzReadBody ./gateway:FuzzWSParse ./gateway:FuzzProxyHeader
# FuzzGatewayInbound drives a real gateway over sockets (slow per input): its
# seeds run in make test; give it time by hand: make fuzz-inbound.
#
# fuzz-short counts inputs rather than seconds (about 3 s each here): with a
# duration, Go 1.26's fuzz coordinator can report the end of -fuzztime as a
# failure, "context deadline exceeded" with no failing input
# (go.dev/issue/75804, fixed in Go 1.27), which failed CI once.
FUZZ_SHORT := ./codec:FuzzDecode:300000x ./codec:FuzzReadBody:200000x \
	./gateway:FuzzWSParse:30000x ./gateway:FuzzProxyHeader:30000x
fuzz-short:
	for t in $(FUZZ_SHORT); do pkg=$${t%%:*}; rest=$${t#*:}; \
		go test $$pkg -run '^$$' -fuzz "^$${rest%%:*}$$" -fuzztime $${rest#*:} || exit 1; done

fuzz:
	for t in $(FUZZ_TARGETS); do go test $${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime 60s || exit 1; done

bench:
	go test ./codec -run '^$$' -bench . -benchmem

fuzz-inbound:
	go test ./gateway -run '^$$' -fuzz '^FuzzGatewayInbound$$' -fuzztime 60s
