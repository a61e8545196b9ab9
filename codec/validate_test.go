package codec_test

import (
	"errors"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestReadBody_RejectsHostileShapes covers bodies whose declared sizes or type
// ids the generated readers would trust: each must be ErrBadBody, cheaply.
func TestReadBody_RejectsHostileShapes(t *testing.T) {
	cases := []struct {
		name string
		body []byte
	}{
		// SyncResp field 1: list<struct> claiming 2^31-1 elements in a few bytes.
		{name: "huge list", body: []byte{15, 0, 1, 12, 0x7f, 0xff, 0xff, 0xff, 0}},
		{name: "negative list size", body: []byte{15, 0, 1, 12, 0xff, 0xff, 0xff, 0xff, 0}},
		{name: "huge string", body: []byte{11, 0, 9, 0x7f, 0xff, 0xff, 0xff, 0}},
		{name: "unknown field type", body: []byte{0x80, 0, 1, 0}},
		{name: "empty map of unknown type", body: []byte{13, 0, 9, 2, 0x80, 0, 0, 0, 0, 0}},
		{name: "missing stop", body: []byte{8, 0, 1, 0, 0, 0, 1}},
		{name: "deep nesting", body: deepStruct(64)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := codec.ReadBody(tc.body, protocol.NewSyncResp())
			if !errors.Is(err, codec.ErrBadBody) {
				t.Fatalf("ReadBody(%x) = %v, want ErrBadBody", tc.body, err)
			}
		})
	}
}

// deepStruct nests n structs in unknown field 9.
func deepStruct(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 12, 0, 9)
	}
	for i := 0; i <= n; i++ {
		b = append(b, 0)
	}
	return b
}

// TestReadBodyLimit_CountsElements checks the element limit applies to
// containers at any depth, and that a container lying about its size stays
// malformed rather than merely over the limit.
func TestReadBodyLimit_CountsElements(t *testing.T) {
	three := []byte{15, 0, 1, 12, 0, 0, 0, 3, 0, 0, 0, 0} // DeliveredReq: 3 empty positions
	if err := codec.ReadBodyLimit(three, &protocol.DeliveredReq{}, 3); err != nil {
		t.Fatalf("3 elements, limit 3: %v", err)
	}
	var req protocol.DeliveredReq
	err := codec.ReadBodyLimit(three, &req, 2)
	if !errors.Is(err, codec.ErrTooManyElems) || errors.Is(err, codec.ErrBadBody) {
		t.Fatalf("3 elements, limit 2: %v, want ErrTooManyElems alone", err)
	}
	if req.Positions != nil {
		t.Fatalf("refused body decoded %d positions", len(req.Positions))
	}
	// A list of 4 i64 nested in an unknown struct field.
	nested := []byte{12, 0, 9, 15, 0, 1, 10, 0, 0, 0, 4}
	nested = append(nested, make([]byte, 32)...)
	nested = append(nested, 0, 0)
	if err := codec.ReadBodyLimit(nested, &req, 3); !errors.Is(err, codec.ErrTooManyElems) {
		t.Fatalf("nested list of 4, limit 3: %v, want ErrTooManyElems", err)
	}
	lying := []byte{15, 0, 1, 12, 0x7f, 0xff, 0xff, 0xff, 0}
	if err := codec.ReadBodyLimit(lying, &req, 2); !errors.Is(err, codec.ErrBadBody) {
		t.Fatalf("list claiming 2^31-1 elements: %v, want ErrBadBody", err)
	}
}
