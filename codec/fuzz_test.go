package codec_test

import (
	"bytes"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// thriftValue is a kitex_gen struct that can be both read and written.
type thriftValue interface {
	codec.Body
	codec.Readable
}

// bodyFor returns a fresh value of the body type of op. SYNC_ACK is included:
// ReadBody validates declared list sizes against the body before the
// generated reader allocates for them.
func bodyFor(op protocol.Op) thriftValue {
	switch op {
	case protocol.Op_HEARTBEAT:
		return protocol.NewHeartbeatReq()
	case protocol.Op_HEARTBEAT_ACK:
		return protocol.NewHeartbeatResp()
	case protocol.Op_REGISTER:
		return protocol.NewRegisterReq()
	case protocol.Op_REGISTER_ACK:
		return protocol.NewRegisterResp()
	case protocol.Op_LOGIN:
		return protocol.NewLoginReq()
	case protocol.Op_LOGIN_ACK:
		return protocol.NewLoginResp()
	case protocol.Op_SEND:
		return protocol.NewSendReq()
	case protocol.Op_SEND_ACK:
		return protocol.NewSendResp()
	case protocol.Op_SYNC:
		return protocol.NewSyncReq()
	case protocol.Op_SYNC_ACK:
		return protocol.NewSyncResp()
	case protocol.Op_GET_USER:
		return protocol.NewGetUserReq()
	case protocol.Op_GET_USER_ACK:
		return protocol.NewGetUserResp()
	case protocol.Op_PUSH:
		return protocol.NewPushMsg()
	case protocol.Op_CLOSE:
		return protocol.NewCloseMsg()
	case protocol.Op_UPLOAD:
		return protocol.NewUploadReq()
	case protocol.Op_DOWNLOAD:
		return protocol.NewDownloadReq()
	case protocol.Op_DOWNLOAD_ACK:
		return protocol.NewDownloadResp()
	}
	return nil
}

func seedFrames() [][]byte {
	return [][]byte{
		codec.EncodeFrame(protocol.Op_SEND, 0, 1, sendReq()),
		codec.EncodeFrame(protocol.Op_PUSH, 0, 0, pushMsg()),
		codec.EncodeFrame(protocol.Op_LOGIN, 0, 2, &protocol.LoginReq{Username: "a", Token: "t"}),
		codec.EncodeFrame(protocol.Op_SEND_ACK, codec.FlagError, 3,
			&protocol.ErrorResp{Code: common.ErrorCode_BUSY, Message: "later"}),
		codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{ReconnectAfterMs: -1}),
		codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 4, nil),
		{0x52, 0x53, 1},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
}

// FuzzDecode: any input decodes without panic; a decoded frame re-encodes to
// the same bytes; its body, if it reads, writes back to a stable form.
func FuzzDecode(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, body, n, err := codec.Decoder{}.Decode(in)
		if err != nil || n == 0 {
			return
		}
		again := make([]byte, codec.HeaderSize, n)
		codec.PutHeader(again, h)
		again = append(again, body...)
		if !bytes.Equal(again, in[:n]) {
			t.Fatalf("re-encoded %x, want %x", again, in[:n])
		}
		if h.Flags&codec.FlagError != 0 {
			checkStable(t, body, protocol.NewErrorResp(), protocol.NewErrorResp(),
				protocol.NewErrorResp())
		} else if v := bodyFor(h.Op); v != nil {
			checkStable(t, body, v, bodyFor(h.Op), bodyFor(h.Op))
		}
	})
}

// checkStable reads body into v; when it reads, its encoding must reach a
// fixed point after one round: write v, read into w, write w, read into x,
// write x == write w. Byte equality with body is not expected (the reader
// skips unknown fields and accepts any field order), nor after the first
// write: a nil struct field writes as an empty struct, which reads back as a
// non-nil zero struct and then writes every field.
func checkStable(t *testing.T, body []byte, v, w, x thriftValue) {
	t.Helper()
	if readBody(t, body, v) != nil {
		return
	}
	first := encodeBody(t, v)
	if err := readBody(t, first, w); err != nil {
		t.Fatalf("re-read of %x: %v", first, err)
	}
	second := encodeBody(t, w)
	if err := readBody(t, second, x); err != nil {
		t.Fatalf("re-read of %x: %v", second, err)
	}
	if third := encodeBody(t, x); !bytes.Equal(second, third) {
		t.Fatalf("unstable encoding: %x then %x", second, third)
	}
}

// readBody is codec.ReadBody that turns a panic into a test failure naming
// the input, so that one bad input fails its case instead of the binary.
func readBody(t *testing.T, body []byte, v codec.Readable) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("ReadBody(%x) into %T panicked: %v", body, v, r)
		}
	}()
	return codec.ReadBody(body, v)
}

func encodeBody(t *testing.T, v codec.Body) []byte {
	t.Helper()
	buf := make([]byte, v.BLength())
	if n := v.FastWriteNocopy(buf, nil); n != len(buf) {
		t.Fatalf("BLength %d but wrote %d", len(buf), n)
	}
	return buf
}

// FuzzReadBody feeds arbitrary bodies to the types clients and the gateway
// read most: selector picks the type.
func FuzzReadBody(f *testing.F) {
	ops := []protocol.Op{protocol.Op_SEND, protocol.Op_PUSH, protocol.Op_LOGIN,
		protocol.Op_CLOSE, protocol.Op_LOGIN_ACK, protocol.Op_UPLOAD, protocol.Op_DOWNLOAD,
		protocol.Op_DOWNLOAD_ACK}
	for i, s := range seedFrames()[:5] {
		f.Add(uint8(i), s[codec.HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, selector uint8, body []byte) {
		op := ops[int(selector)%len(ops)]
		checkStable(t, body, bodyFor(op), bodyFor(op), bodyFor(op))
	})
}
