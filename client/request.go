package client

import (
	"context"
	"errors"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// roundTrip sends req under op and waits for the reply, decoded into resp.
// It returns *Error for an error reply, ErrTimeout (wrapped) when the reply
// does not come within RequestTimeout, a *TooLargeError for a body over
// SendLimit, and the connection's error when it ends first.
func (c *Client) roundTrip(parent context.Context, op protocol.Op, req codec.Body,
	resp codec.Readable) error {
	_, err := c.exchange(parent, op, req, resp)
	return err
}

// roundTripOnce is roundTrip for a request that is not safe to repeat
// blindly: when it went unanswered after it was written (see exchange),
// the error wraps ErrOutcomeUnknown beside its cause, so that the caller
// finds out what the server did before it tries again.
func (c *Client) roundTripOnce(ctx context.Context, op protocol.Op, req codec.Body,
	resp codec.Readable) error {
	unanswered, err := c.exchange(ctx, op, req, resp)
	if unanswered {
		return errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// exchange is roundTrip that also reports whether req went unanswered
// after it was written: the connection ended, or the wait did, before the
// reply came, so the server may have acted on it. A request refused as
// too large, or whose write failed, did not reach the server whole.
func (c *Client) exchange(parent context.Context, op protocol.Op, req codec.Body,
	resp codec.Readable) (unanswered bool, err error) {
	// The gateway closes the connection at the header of a frame over its
	// limit, so such a request must never be written: the close would fail
	// every other request in flight, and a caller that retries across
	// reconnects would send it again after each one.
	size := req.BLength()
	if size > c.opts.SendLimit {
		return false, &TooLargeError{Op: op, Size: size, Limit: c.opts.SendLimit}
	}
	ctx, cancel := context.WithTimeout(parent, c.opts.RequestTimeout)
	defer cancel()

	id := c.newRequestID()
	cl := &call{op: op, size: size, resp: resp, done: make(chan error, 1)}
	if err := c.register(id, cl); err != nil {
		return false, err
	}
	if err := c.writeFrame(ctx, op, id, req); err != nil {
		// The connection ended during the write; if the reader failed the
		// call first, its error says more (it may blame this request).
		if !c.unregister(id) {
			return false, <-cl.done
		}
		return false, err
	}

	select {
	case err := <-cl.done:
		return lostAnswer(err), err
	case <-ctx.Done():
		// The reader may have taken the call just now; if so its result wins.
		if !c.abandon(id) {
			err := <-cl.done
			return lostAnswer(err), err
		}
		if err := parent.Err(); err != nil {
			return true, errorf("%s request %d: %w", op, id, err)
		}
		return true, errorf("%s request %d: %w", op, id, ErrTimeout)
	}
}

// lostAnswer reports whether err, the outcome of a written call, leaves
// unknown what the server did with it: anything but a reply the SDK read
// (nil, *Error) or a refusal of the frame unread (*TooLargeError). A reply
// the SDK could not read (ErrProtocol) counts as lost: it may have said
// done.
func lostAnswer(err error) bool {
	var se *Error
	var tl *TooLargeError
	return err != nil && !errors.As(err, &se) && !errors.As(err, &tl)
}

// newRequestID skips 0, which pushes carry.
func (c *Client) newRequestID() uint32 {
	for {
		if id := c.nextID.Add(1); id != 0 {
			return id
		}
	}
}

// register adds a call to the pending ones. On a connection that has
// ended it fails with the connection's error; a CLOSE PROTOCOL_ERROR then
// comes as closedBeside, since the frame it was for was another one, sent
// before.
func (c *Client) register(id uint32, cl *call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if closedFor(c.err, protocol.CloseReason_PROTOCOL_ERROR) {
		return closedBeside{c.err}
	}
	if c.err != nil {
		return c.err
	}
	c.pending[id] = cl
	return nil
}

// unregister reports whether the call was still pending.
func (c *Client) unregister(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// abandon reports whether the call was still pending, and marks it given
// up: it stays pending, its reply discarded when it comes, so that a
// FRAME_TOO_LARGE close still knows it was in flight (blameTooLarge).
func (c *Client) abandon(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.pending[id]
	if ok {
		cl.abandoned = true
	}
	return ok
}

// writeFrame writes one frame in one Write call. A failed or partial write
// leaves the stream unusable, so it ends the connection.
func (c *Client) writeFrame(ctx context.Context, op protocol.Op, id uint32, body codec.Body) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline, _ := ctx.Deadline()
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		c.fail(errorf("set write deadline: %w", err))
		return c.Err()
	}
	c.wbuf = codec.AppendFrame(c.wbuf[:0], op, 0, id, body)
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.awaitClose()
		c.fail(errorf("write %s request %d: %w", op, id, err))
		return c.Err()
	}
	return nil
}

// closeGrace is how long a failed write waits for the reader to decode a
// CLOSE the server sent before resetting the connection.
const closeGrace = 200 * time.Millisecond

// awaitClose gives the reader closeGrace to end the connection first: a
// server that refuses a frame (FRAME_TOO_LARGE) closes while the client is
// still writing it, and its CLOSE, still readable after the reset, says
// which request to drop, where the write error would have it sent again.
func (c *Client) awaitClose() {
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

// startHeartbeat sends a HEARTBEAT every interval until the connection ends.
// A heartbeat that gets no reply ends the connection with ErrHeartbeat; a
// reply of any kind, even an error, proves the server is alive.
func (c *Client) startHeartbeat(interval time.Duration) {
	if interval <= 0 || !c.heartbeatOn.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
			}
			err := c.roundTrip(context.Background(), protocol.Op_HEARTBEAT,
				protocol.NewHeartbeatReq(), protocol.NewHeartbeatResp())
			var se *Error
			if err != nil && !errors.As(err, &se) {
				c.fail(errorf("%w: %w", ErrHeartbeat, err))
				return
			}
		}
	}()
}
