package codec_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// sendReq and pushMsg are bodies as a decoder leaves them: a list field
// decodes as an empty slice, never nil, so they compare with
// reflect.DeepEqual after a round trip.
func sendReq() *protocol.SendReq {
	return &protocol.SendReq{
		ClientMsgId: "0123456789abcdef0123456789abcdef",
		ToUserId:    42,
		ContentType: common.ContentType_TEXT,
		Content:     []byte("hello, resonance"),
		ReplyToSeq:  new(int64(2)),
		Mentions:    []int64{},
	}
}

func pushMsg() *protocol.PushMsg {
	return &protocol.PushMsg{Message: &common.Message{
		MsgId: 7, ConvId: "p2p:1:42", Seq: 3, SenderId: 1,
		ClientMsgId: "0123456789abcdef0123456789abcdef", ContentType: common.ContentType_TEXT,
		Content: []byte("hello, resonance"), SendTimeMs: 1_700_000_000_000, SenderDevice: "phone",
		ReplyToSeq: new(int64(2)), Mentions: []int64{42, 43}, MentionAll: new(true),
	}}
}

// withByte returns a copy of b with b[i] = v.
func withByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func TestDecode(t *testing.T) {
	frame := codec.EncodeFrame(protocol.Op_SEND, 0, 9, sendReq())
	empty := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	errFrame := codec.EncodeFrame(protocol.Op_SEND_ACK, codec.FlagError, 9,
		&protocol.ErrorResp{Code: common.ErrorCode_BUSY})

	tests := []struct {
		name     string
		in       []byte
		maxBody  int
		wantN    int
		wantHead codec.Header
		wantErr  error
	}{
		{name: "whole frame", in: frame, wantN: len(frame), wantHead: codec.Header{
			Op: protocol.Op_SEND, RequestID: 9, BodyLen: uint32(len(frame) - codec.HeaderSize)}},
		{name: "frame and more", in: append(bytes.Clone(frame), 0x52), wantN: len(frame),
			wantHead: codec.Header{Op: protocol.Op_SEND, RequestID: 9,
				BodyLen: uint32(len(frame) - codec.HeaderSize)}},
		{name: "error flag", in: errFrame, wantN: len(errFrame), wantHead: codec.Header{
			Op: protocol.Op_SEND_ACK, Flags: codec.FlagError, RequestID: 9,
			BodyLen: uint32(len(errFrame) - codec.HeaderSize)}},
		{name: "empty body", in: empty, wantN: codec.HeaderSize,
			wantHead: codec.Header{Op: protocol.Op_HEARTBEAT, RequestID: 1}},
		{name: "nothing", in: nil},
		{name: "header only", in: frame[:codec.HeaderSize]},
		{name: "body short by one", in: frame[:len(frame)-1]},
		{name: "bad magic at first byte", in: []byte{'G'}, wantErr: codec.ErrBadMagic},
		{name: "bad magic at second byte", in: []byte{0x52, 'E'}, wantErr: codec.ErrBadMagic},
		{name: "bad magic in whole header", in: withByte(frame, 1, 0), wantErr: codec.ErrBadMagic},
		{name: "bad version", in: withByte(frame, 2, 2), wantErr: codec.ErrBadVersion},
		{name: "unknown op", in: withByte(frame, 3, 0x7f), wantErr: codec.ErrUnknownOp},
		{name: "op zero", in: withByte(frame, 3, 0), wantErr: codec.ErrUnknownOp},
		{
			name:    "body over MaxBody rejected from the header alone",
			in:      frame[:codec.HeaderSize],
			maxBody: len(frame) - codec.HeaderSize - 1,
			wantErr: codec.ErrTooLarge,
		},
		{
			name: "body over the default limit",
			// Length 64 KiB plus the real one: over the default limit.
			in:      withByte(withByte(frame[:codec.HeaderSize], 10, 0), 11, 1),
			wantErr: codec.ErrTooLarge,
		},
		{
			name:    "body at MaxBody accepted",
			in:      frame,
			maxBody: len(frame) - codec.HeaderSize,
			wantN:   len(frame),
			wantHead: codec.Header{Op: protocol.Op_SEND, RequestID: 9,
				BodyLen: uint32(len(frame) - codec.HeaderSize)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, n, err := codec.Decoder{MaxBody: tt.maxBody}.Decode(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN {
				t.Fatalf("n = %d, want %d", n, tt.wantN)
			}
			if n == 0 {
				return
			}
			if h != tt.wantHead {
				t.Fatalf("header = %+v, want %+v", h, tt.wantHead)
			}
			if !bytes.Equal(body, tt.in[codec.HeaderSize:n]) {
				t.Fatalf("body = %x, want %x", body, tt.in[codec.HeaderSize:n])
			}
		})
	}
}

func TestDecode_ByteByByte(t *testing.T) {
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, pushMsg())
	var d codec.Decoder
	for i := range len(frame) {
		if _, _, n, err := d.Decode(frame[:i]); n != 0 || err != nil {
			t.Fatalf("prefix of %d/%d bytes: n = %d, err = %v; want 0, nil", i, len(frame), n, err)
		}
	}
	_, body, n, err := d.Decode(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("whole frame: n = %d, err = %v", n, err)
	}
	got := protocol.NewPushMsg()
	if err := codec.ReadBody(body, got); err != nil {
		t.Fatal(err)
	}
	if got.Message.Seq != 3 || string(got.Message.Content) != "hello, resonance" {
		t.Fatalf("push = %+v", got.Message)
	}
}

func TestDecode_Coalesced(t *testing.T) {
	type frame struct {
		op   protocol.Op
		id   uint32
		body codec.Body
	}
	frames := []frame{
		{protocol.Op_LOGIN_ACK, 1, &protocol.LoginResp{UserId: 5, Token: "t"}},
		{protocol.Op_PUSH, 0, pushMsg()},
		{protocol.Op_HEARTBEAT_ACK, 2, nil},
		{protocol.Op_CLOSE, 0, &protocol.CloseMsg{Reason: protocol.CloseReason_KICKED}},
	}
	var stream []byte
	for _, f := range frames {
		stream = codec.AppendFrame(stream, f.op, 0, f.id, f.body)
	}

	var d codec.Decoder
	for i, want := range frames {
		h, body, n, err := d.Decode(stream)
		if err != nil || n == 0 {
			t.Fatalf("frame %d: n = %d, err = %v", i, n, err)
		}
		if h.Op != want.op || h.RequestID != want.id || int(h.BodyLen) != len(body) {
			t.Fatalf("frame %d: header %+v, want op %s id %d", i, h, want.op, want.id)
		}
		if want.body != nil && len(body) != want.body.BLength() {
			t.Fatalf("frame %d: body %d bytes, want %d", i, len(body), want.body.BLength())
		}
		stream = stream[n:]
	}
	if len(stream) != 0 {
		t.Fatalf("%d bytes left", len(stream))
	}
}

func TestDecodeHeader_Short(t *testing.T) {
	if _, err := (codec.Decoder{}).DecodeHeader(make([]byte, codec.HeaderSize-1)); err == nil {
		t.Fatal("short header accepted")
	}
}

func TestReadBody(t *testing.T) {
	good := codec.EncodeFrame(protocol.Op_SEND, 0, 1, sendReq())[codec.HeaderSize:]
	tests := []struct {
		name    string
		body    []byte
		want    *protocol.SendReq
		wantErr error
	}{
		{name: "round trip", body: good, want: sendReq()},
		{name: "empty body reads as zero struct", body: nil, want: &protocol.SendReq{}},
		{name: "trailing bytes", body: append(bytes.Clone(good), 0), wantErr: codec.ErrBadBody},
		{name: "truncated", body: good[:len(good)-2], wantErr: codec.ErrBadBody},
		{name: "not thrift", body: []byte{0x0b, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff},
			wantErr: codec.ErrBadBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.NewSendReq()
			err := codec.ReadBody(tt.body, got)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadBody_CopiesOut(t *testing.T) {
	body := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, pushMsg())[codec.HeaderSize:]
	got := protocol.NewPushMsg()
	if err := codec.ReadBody(body, got); err != nil {
		t.Fatal(err)
	}
	clear(body)
	if !reflect.DeepEqual(got, pushMsg()) {
		t.Fatalf("decoded value changed with its buffer: %+v", got.Message)
	}
}

func TestAppendFrame(t *testing.T) {
	prefix := []byte("xyz")
	out := codec.AppendFrame(bytes.Clone(prefix), protocol.Op_SEND, 0, 3, sendReq())
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("prefix lost: %q", out[:3])
	}
	want := codec.EncodeFrame(protocol.Op_SEND, 0, 3, sendReq())
	if !bytes.Equal(out[len(prefix):], want) || len(want) != codec.FrameLen(sendReq()) {
		t.Fatalf("appended %x, want %x", out[len(prefix):], want)
	}
	empty := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	if len(empty) != codec.HeaderSize {
		t.Fatalf("nil body frame is %d bytes, want %d", len(empty), codec.HeaderSize)
	}
}

func TestFrames_DoNotAllocate(t *testing.T) {
	req := sendReq()
	buf := make([]byte, 0, 256)
	frame := codec.EncodeFrame(protocol.Op_SEND, 0, 1, req)
	var d codec.Decoder
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "AppendFrame into a reused buffer", fn: func() {
			buf = codec.AppendFrame(buf[:0], protocol.Op_SEND, 0, 1, req)
		}},
		{name: "Decode", fn: func() { _, _, _, _ = d.Decode(frame) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
}

func TestOps(t *testing.T) {
	tests := []struct {
		name      string
		op        protocol.Op
		known     bool
		request   bool
		replyOp   protocol.Op
		replyKnow bool
	}{
		{name: "heartbeat", op: protocol.Op_HEARTBEAT, known: true, request: true,
			replyOp: protocol.Op_HEARTBEAT_ACK, replyKnow: true},
		{name: "send", op: protocol.Op_SEND, known: true, request: true,
			replyOp: protocol.Op_SEND_ACK, replyKnow: true},
		{name: "get user", op: protocol.Op_GET_USER, known: true, request: true,
			replyOp: protocol.Op_GET_USER_ACK, replyKnow: true},
		{name: "an ack", op: protocol.Op_LOGIN_ACK, known: true},
		{name: "push", op: protocol.Op_PUSH, known: true},
		{name: "close", op: protocol.Op_CLOSE, known: true},
		{name: "notify", op: protocol.Op_NOTIFY, known: true},
		{name: "server range, unassigned", op: 0x45},
		{name: "react", op: protocol.Op_REACT, known: true, request: true,
			replyOp: protocol.Op_REACT_ACK, replyKnow: true},
		{name: "upload", op: protocol.Op_UPLOAD, known: true, request: true,
			replyOp: protocol.Op_UPLOAD_ACK, replyKnow: true},
		{name: "download", op: protocol.Op_DOWNLOAD, known: true, request: true,
			replyOp: protocol.Op_DOWNLOAD_ACK, replyKnow: true},
		{name: "search messages", op: protocol.Op_SEARCH_MESSAGES, known: true, request: true,
			replyOp: protocol.Op_SEARCH_MESSAGES_ACK, replyKnow: true},
		{name: "pin", op: protocol.Op_PIN, known: true, request: true,
			replyOp: protocol.Op_PIN_ACK, replyKnow: true},
		{name: "next unassigned request", op: 0x5D, request: true},
		{name: "zero", op: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codec.KnownOp(tt.op); got != tt.known {
				t.Fatalf("KnownOp(%#x) = %v", int64(tt.op), got)
			}
			if got := codec.IsRequest(tt.op); got != tt.request {
				t.Fatalf("IsRequest(%#x) = %v", int64(tt.op), got)
			}
			if tt.replyOp != 0 && (codec.ReplyOp(tt.op) != tt.replyOp ||
				codec.KnownOp(codec.ReplyOp(tt.op)) != tt.replyKnow) {
				t.Fatalf("ReplyOp(%s) = %s, want %s", tt.op, codec.ReplyOp(tt.op), tt.replyOp)
			}
		})
	}
}

// TestReadBody_BadFieldTypeIsAnError pins a crash found by FuzzDecode:
// gopkg v0.2.0's thrift Skip indexes a table with the field type as a signed
// int8, so a field type byte of 0x80 or more panics (index out of range)
// instead of failing. codec.ReadBody must turn that into ErrBadBody: a
// gateway decoding client bodies on its event loop would otherwise crash on
// one malformed frame. This test fails until codec.ReadBody guards it.
func TestReadBody_BadFieldTypeIsAnError(t *testing.T) {
	// Field id 0x3030 of type 0xa5, which the reader tries to skip.
	bad := []byte{0xa5, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30}
	tests := []struct {
		name string
		v    codec.Readable
	}{
		{name: "PushMsg", v: protocol.NewPushMsg()},
		{name: "SendReq", v: protocol.NewSendReq()},
		{name: "LoginReq", v: protocol.NewLoginReq()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("ReadBody panicked: %v", r)
				}
			}()
			if err := codec.ReadBody(bad, tt.v); !errors.Is(err, codec.ErrBadBody) {
				t.Fatalf("err = %v, want ErrBadBody", err)
			}
		})
	}
}
