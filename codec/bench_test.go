package codec_test

import (
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func BenchmarkAppendFrame_SendReq(b *testing.B) {
	req := sendReq()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = codec.AppendFrame(buf[:0], protocol.Op_SEND, 0, 1, req)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendFrame_PushMsg(b *testing.B) {
	push := pushMsg()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = codec.AppendFrame(buf[:0], protocol.Op_PUSH, 0, 0, push)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecode splits header and body of a frame, without reading the body.
func BenchmarkDecode(b *testing.B) {
	frame := codec.EncodeFrame(protocol.Op_SEND, 0, 1, sendReq())
	var d codec.Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, n, err := d.Decode(frame); n != len(frame) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkReadBody_SendReq(b *testing.B) {
	body := codec.EncodeFrame(protocol.Op_SEND, 0, 1, sendReq())[codec.HeaderSize:]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := codec.ReadBody(body, protocol.NewSendReq()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadBody_PushMsg(b *testing.B) {
	body := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, pushMsg())[codec.HeaderSize:]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := codec.ReadBody(body, protocol.NewPushMsg()); err != nil {
			b.Fatal(err)
		}
	}
}
