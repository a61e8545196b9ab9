package scenario

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A CLOSE that ends a chat or group connection is reported with its
// reason and message, as echo reports it: a chat run past the default
// --frame-rate printed "server closed a connection: UNKNOWN " while the
// gateway had closed it with RATE_LIMITED.
func TestChatConnReadFrames_ReportsCloseReason(t *testing.T) {
	clientSide, serverSide := net.Pipe()
	t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
	c := &chatConn{benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)}}
	go func() {
		frame := codec.AppendFrame(nil, protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{
			Reason: protocol.CloseReason_RATE_LIMITED, Message: "too many frames per second",
			ReconnectAfterMs: 5000})
		_, _ = serverSide.Write(frame)
		_ = serverSide.Close()
	}()
	err := c.readFrames(func(codec.Header, []byte) {}, func(*common.Message) {})
	if !errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "RATE_LIMITED") ||
		!strings.Contains(err.Error(), "too many frames per second") {
		t.Fatalf("readFrames = %v, want ErrServerClosed naming RATE_LIMITED and its message", err)
	}
}
