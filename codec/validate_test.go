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
