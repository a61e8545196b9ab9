MODULE := github.com/resonance-im/resonance
IDL := idl/common.thrift idl/protocol.thrift idl/event.thrift idl/logic.thrift idl/push.thrift

.PHONY: run test test-integration gen gen-check bench-smoke fuzz build

build:
	go build -o bin/resonance .

run:
	go run .

test:
	go test -race -count=1 ./...

gen:
	for f in $(IDL); do go tool kitex -module $(MODULE) $$f || exit 1; done
	gofmt -w kitex_gen

gen-check: gen
	git diff --exit-code -- kitex_gen
	test -z "$$(git status --porcelain -- kitex_gen)"
