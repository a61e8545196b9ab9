MODULE := github.com/resonance-im/resonance
IDL := idl/common.thrift idl/protocol.thrift idl/event.thrift idl/logic.thrift idl/push.thrift

# The integration suite's services: the ones CI runs on this machine.
TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:3306)/test?parseTime=true
TEST_REDIS_ADDR ?= 127.0.0.1:6379
TEST_NATS_URL ?= nats://127.0.0.1:4222

.PHONY: run build test test-integration gen gen-check smoke fuzz bench

run:
	go run .

build:
	go build -o bin/resonance .

test:
	go test -race -count=1 ./...

test-integration:
	RESONANCE_TEST_MYSQL_DSN='$(TEST_MYSQL_DSN)' \
	RESONANCE_TEST_REDIS_ADDR='$(TEST_REDIS_ADDR)' \
	RESONANCE_TEST_NATS_URL='$(TEST_NATS_URL)' \
	go test -race -count=1 ./app/... ./logic/... ./internal/route/...

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

fuzz:
	go test ./codec -run '^$$' -fuzz FuzzDecode -fuzztime 30s

bench:
	go test ./codec -run '^$$' -bench . -benchmem
