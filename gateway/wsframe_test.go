package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const testMaxMessage = 256

// wsFeed plays gnet's part for a wsReader: it appends each chunk to a
// buffer, parses every complete frame and drops what was consumed. It
// returns the messages (copied) and the first error.
func wsFeed(chunks ...[]byte) ([]string, error) {
	var r wsReader
	var out []string
	var pending []byte
	for _, chunk := range chunks {
		pending = append(pending, chunk...)
		for {
			m, n, ok, err := r.next(pending, testMaxMessage)
			if err != nil {
				return out, err
			}
			if n == 0 {
				break
			}
			pending = pending[n:]
			if ok {
				out = append(out, fmt.Sprintf("%v:%x", m.op, m.payload))
				if m.op == ws.OpBinary {
					r.release()
				}
			}
		}
	}
	return out, nil
}

func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	var b bytes.Buffer
	f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, bytes.Clone(payload)))
	_ = ws.WriteFrame(&b, f)
	return b.Bytes()
}

func TestWSReader_Messages(t *testing.T) {
	hb := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	cases := []struct {
		name   string
		stream []byte
		want   []string
		err    error
	}{
		{name: "one binary message", stream: maskedFrame(ws.OpBinary, true, hb),
			want: []string{fmt.Sprintf("%v:%x", ws.OpBinary, hb)}},
		{name: "fragments around a ping", stream: bytes.Join([][]byte{
			maskedFrame(ws.OpBinary, false, hb[:5]),
			maskedFrame(ws.OpPing, true, []byte("p")),
			maskedFrame(ws.OpContinuation, true, hb[5:]),
		}, nil), want: []string{
			fmt.Sprintf("%v:%x", ws.OpPing, "p"), fmt.Sprintf("%v:%x", ws.OpBinary, hb),
		}},
		{name: "126-byte length form", stream: maskedFrame(ws.OpBinary, true, make([]byte, 200)),
			want: []string{fmt.Sprintf("%v:%x", ws.OpBinary, make([]byte, 200))}},
		{name: "over the limit", stream: maskedFrame(ws.OpBinary, true, make([]byte, 300)),
			err: ErrWSTooLarge},
		{name: "text", stream: maskedFrame(ws.OpText, true, []byte("hi")), err: ErrWSText},
		{name: "unmasked", stream: []byte{0x82, 0}, err: ErrWSProtocol},
		{name: "long ping", stream: maskedFrame(ws.OpPing, true, make([]byte, 126)),
			err: ErrWSProtocol},
		{name: "new message inside a fragmented one", stream: bytes.Join([][]byte{
			maskedFrame(ws.OpBinary, false, hb[:5]), maskedFrame(ws.OpBinary, true, hb),
		}, nil), err: ErrWSProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, and one byte at a time: the same result.
			var bytewise [][]byte
			for i := range tc.stream {
				bytewise = append(bytewise, tc.stream[i:i+1])
			}
			for _, chunks := range [][][]byte{{tc.stream}, bytewise} {
				got, err := wsFeed(chunks...)
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if tc.err == nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("messages %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestAppendWSHeader_ParsesBack(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		hdr := appendWSHeader(nil, ws.OpBinary, n)
		h, hlen, err := parseWSHeader(hdr)
		if err != nil || hlen != len(hdr) || h.Length != int64(n) || !h.Fin ||
			h.Masked || h.OpCode != ws.OpBinary {
			t.Fatalf("length %d: header %+v (%d bytes, err %v)", n, h, hlen, err)
		}
	}
}

// FuzzWSParse checks the WebSocket reader on arbitrary bytes: it never
// panics, never returns a message over its limit, and cutting the stream in
// two changes nothing, as gnet may deliver any split.
func FuzzWSParse(f *testing.F) {
	hb := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	f.Add(maskedFrame(ws.OpBinary, true, hb), 3)
	f.Add(bytes.Join([][]byte{maskedFrame(ws.OpBinary, false, hb[:4]),
		maskedFrame(ws.OpPing, true, nil), maskedFrame(ws.OpContinuation, true, hb[4:])}, nil), 9)
	f.Add([]byte{0x82, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 5)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		whole, errWhole := wsFeed(bytes.Clone(stream))
		for _, m := range whole {
			if len(m) > 2*testMaxMessage+16 {
				t.Fatalf("message of %d hex chars over the limit", len(m))
			}
		}
		if len(stream) == 0 {
			return
		}
		cut = (cut%len(stream) + len(stream)) % len(stream)
		split, errSplit := wsFeed(bytes.Clone(stream[:cut]), bytes.Clone(stream[cut:]))
		if fmt.Sprint(whole) != fmt.Sprint(split) || (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("whole: %v %v; cut at %d: %v %v", whole, errWhole, cut, split, errSplit)
		}
	})
}
