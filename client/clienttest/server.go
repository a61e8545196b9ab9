// Package clienttest runs a small in-memory Resonance server on loopback for
// the tests of the SDK, the chat client and the bench scenarios. It speaks
// the real frame protocol (package codec) with the semantics of the real
// system that clients rely on: register under the server's password
// policy, login by password, access token or refresh token, REFRESH with
// rotation and reuse detection, idempotent sends with a per-conversation
// seq, pushes to every other connection of both users, forward and
// backward sync, delivered positions per device, conversation sync with a
// cursor, read positions, user lookup and search, logout, password change,
// profile, signing a device out, and of groups their creation, GET_GROUP,
// LEAVE and the hand-over of ownership. Hooks inject faults: failed sends,
// lost pushes, requests and replies, closes, ops an older server lacks.
// It is a test double: no persistence, one mutex, and of the gateway's
// limits and closes only those a client must handle (frame body, message
// content, positions per DELIVERED; TOKEN_EXPIRED when the access token
// runs out, LOGIN_FAILED at the third refused login of a connection).
package clienttest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// outboundFrames bounds each connection's queue; a client over it is closed
// as a slow consumer, as the real gateway does.
const outboundFrames = 4096

// Options tunes the fake server.
type Options struct {
	// HeartbeatInterval is given to clients at login; zero means 30s.
	HeartbeatInterval time.Duration
	// SyncLimit caps the messages of one sync reply; zero means 50.
	SyncLimit int32
	// SearchScan is the messages one SEARCH_MESSAGES page looks at, as the
	// server bounds its scan; zero means all.
	SearchScan int
	// MaxBody is the largest request body accepted, in bytes; zero means
	// codec.DefaultMaxBody, as the gateway. A frame over it gets CLOSE
	// FRAME_TOO_LARGE as soon as its header is read, its body unread.
	MaxBody int
	// MaxContent is the largest message content accepted, in bytes; zero
	// means 16 KiB, as the server. A SEND over it fails with TOO_LARGE.
	MaxContent int
	// TokenTTL is the life of an access token; zero means 1h. A LOGIN with
	// an expired one fails with TOKEN_INVALID, and a connection whose
	// token expires, not moved by a REFRESH, is closed with TOKEN_EXPIRED,
	// as the gateway's.
	TokenTTL time.Duration
	// RefreshRetryGrace is how long after a rotation the rotated-away
	// refresh token is taken back once (the retry of a lost answer); zero
	// means 30 s, as the server.
	RefreshRetryGrace time.Duration
	// OmitConvDismissed leaves ConvSummary.dismissed unset, as a server
	// from before the field does; clients then tell a dismissed group from
	// its history.
	OmitConvDismissed bool
	// KeepSignedOut leaves a connection open after a TOKEN_INVALID answer
	// to one of its requests, or to a LOGIN with a signed-out device's
	// token, as a gateway from before those closes does; by default the
	// connection is closed with SIGNED_OUT behind the answer, as the
	// gateway's.
	KeepSignedOut bool
	// MaxFileSize is the largest upload accepted, in bytes; zero means
	// 25 MiB, as the server. A larger one is refused at its first UPLOAD
	// with TOO_LARGE, in the server's words.
	MaxFileSize int64
	// OmitLimits leaves LoginResp.limits unset, as a server from before
	// the field does; by default it reports MaxFileSize and the server's
	// default content size, windows and group size.
	OmitLimits bool
}

// maxPositions is the server's bound on the positions of one DELIVERED.
const maxPositions = 500

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup

	mu        sync.Mutex
	users     map[string]*user
	usersByID map[int64]*user
	tokens    map[string]access // by access token
	refresh   map[device]*refreshState
	// revoked holds the tokens, access and refresh, of devices signed out
	// since: a LOGIN with one is refused as the server refuses it, marked
	// signed out (see loginFailedLocked).
	revoked    map[string]bool
	convs      map[string]*conv
	conns      map[*conn]struct{}
	failSends  int
	failLogins int
	sendCount  int
	heartbeats int
	nextUserID int64
	nextMsgID  int64
	nextGroup  int64
	closed     bool
	// version counts conversation changes (see conv.version).
	version        int64
	dropPushes     int
	syncDelay      time.Duration
	convsGate      chan struct{} // while not nil, SYNC_CONVS waits for its close
	loginGate      chan struct{} // while not nil, LOGIN waits for its close
	heldLogins     int
	transferGate   chan struct{} // while not nil, a file's later chunks wait
	heldTransfers  int
	deliveredCalls int
	uploads        map[string]*upload // by file id
	mutes          map[string]bool    // by "user/conv"
	unsupported    map[protocol.Op]bool
	requests       map[protocol.Op]int // by op, every request answered or refused
	unknown        map[protocol.Op]bool
	// failBackward is how many backward SYNCs still fail (FailBackwardSyncs).
	failBackward int
	// refusedSyncs is the code every SYNC of a conversation is answered
	// with, by conversation id (RefuseSyncs).
	refusedSyncs map[string]common.ErrorCode
	// lostRequests and lostReplies count, by op, the requests still to be
	// lost (LoseRequests, LoseReplies).
	lostRequests map[protocol.Op]int
	lostReplies  map[protocol.Op]int
	// refusals are the refusals still to answer requests with, by op
	// (Refuse).
	refusals map[protocol.Op]refusal
	// blocks holds {blocker, blocked} pairs; the fake records them and
	// enforces nothing.
	blocks map[[2]int64]bool
	// groupAcks are the acks of group changes by "user/client msg id".
	groupAcks map[string]*protocol.GroupChangeResp
}

type user struct {
	id        int64
	name      string
	password  string
	nickname  string
	avatarURL string
	devices   map[string]bool // every device id logged in with
	deleted   bool            // DELETE_ACCOUNT; out of users, kept in usersByID
	suspended bool            // Suspend: logins refused with ACCOUNT_SUSPENDED
}

// device is one device of a user: a token logs in as its device.
type device struct {
	userID int64
	id     string
}

type conv struct {
	id      string
	members [2]int64          // of a 1:1 conversation
	group   *group            // of a group conversation, else nil
	msgs    []*common.Message // msgs[i].Seq == i+1
	acks    map[string]*protocol.SendResp
	// version is the server's change counter at the conversation's last
	// change: the cursor of SYNC_CONVS compares against it.
	version   int64
	readSeq   map[int64]int64  // per user
	delivered map[string]int64 // per "user/device"
	// clears holds each user's CLEAR_CONV state (clear.go); nil until one.
	clears map[int64]clearState
	// pins are the pinned seqs, most recently pinned first (pins.go).
	pins []int64
}

// Start listens on 127.0.0.1 port 0 and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 30 * time.Second
	}
	if opts.SyncLimit <= 0 {
		opts.SyncLimit = 50
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = codec.DefaultMaxBody
	}
	if opts.MaxContent <= 0 {
		opts.MaxContent = 16 << 10
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RefreshRetryGrace <= 0 {
		opts.RefreshRetryGrace = refreshRetryGrace
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("clienttest: listen: %w", err)
	}
	s := &Server{
		opts:      opts,
		ln:        ln,
		users:     make(map[string]*user),
		usersByID: make(map[int64]*user),
		tokens:    make(map[string]access),
		refresh:   make(map[device]*refreshState),
		revoked:   make(map[string]bool),
		convs:     make(map[string]*conv),
		conns:     make(map[*conn]struct{}),

		unsupported: make(map[protocol.Op]bool),
		refusals:    make(map[protocol.Op]refusal),
		requests:    make(map[protocol.Op]int),
		unknown:     make(map[protocol.Op]bool),
		blocks:      make(map[[2]int64]bool),

		lostRequests: make(map[protocol.Op]int),
		lostReplies:  make(map[protocol.Op]int),
		groupAcks:    make(map[string]*protocol.GroupChangeResp),
		refusedSyncs: make(map[string]common.ErrorCode),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port to dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, drops every connection and waits for the server's
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

// FailSends makes the next n SEND requests fail with UNAVAILABLE before
// anything is stored, to exercise client retries.
func (s *Server) FailSends(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSends = n
}

// FailLogins makes the next n LOGIN requests fail with UNAVAILABLE, as a
// server whose account store is briefly down does: a reconnect attempt
// that fails and is tried again.
func (s *Server) FailLogins(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLogins = n
}

// FailBackwardSyncs makes the next n backward SYNC requests (before_seq
// set) fail with UNAVAILABLE, as a server whose store is briefly down does.
func (s *Server) FailBackwardSyncs(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failBackward = n
}

// RefuseSyncs makes every SYNC of convID, forward and backward, fail with
// code (FORBIDDEN, NOT_FOUND), as a server does for a conversation its
// user may no longer read; the listing still reports it. OK answers them
// again.
func (s *Server) RefuseSyncs(convID string, code common.ErrorCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == common.ErrorCode_OK {
		delete(s.refusedSyncs, convID)
		return
	}
	s.refusedSyncs[convID] = code
}

// SendCount is how many SEND requests reached the server, failed ones included.
func (s *Server) SendCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendCount
}

// ExpireTokens drops every token issued so far, access and refresh, as if
// they had expired: a LOGIN with one is refused TOKEN_INVALID and the
// connection stays open.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
	clear(s.refresh)
}

// RevokeTokens revokes every token issued so far, access and refresh, as
// signing every device out does (without closing connections): a LOGIN
// with one is refused TOKEN_INVALID and its connection closed with
// SIGNED_OUT, as the gateway's.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.usersByID {
		s.revokeLocked(u.id, "")
	}
}

// Heartbeats is how many HEARTBEAT requests reached the server.
func (s *Server) Heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats
}

// Devices lists, sorted, every device id the user logged in with.
func (s *Server) Devices(username string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(u.devices))
}

// Usernames lists, sorted, every registered user.
func (s *Server) Usernames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.users))
}

// Online is how many logged-in connections the user has.
func (s *Server) Online(username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if u := s.usersByID[c.userID]; u != nil && u.name == username {
			n++
		}
	}
	return n
}

// CloseUser sends CLOSE with reason and reconnectAfter to every connection of
// the user, then closes them.
func (s *Server) CloseUser(username string, reason protocol.CloseReason,
	reconnectAfter time.Duration) {
	msg := &protocol.CloseMsg{
		Reason:           reason,
		Message:          "closed by test",
		ReconnectAfterMs: int32(reconnectAfter / time.Millisecond),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if u := s.usersByID[c.userID]; u != nil && u.name == username {
			c.enqueue(codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, msg))
			c.closeAfterFlush()
		}
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		go func() { defer s.wg.Done(); c.writeLoop() }()
		go func() { defer s.wg.Done(); s.serve(c) }()
	}
}

func (s *Server) serve(c *conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if c.expiryTimer != nil {
			c.expiryTimer.Stop()
		}
		s.mu.Unlock()
		c.close()
	}()
	br := bufio.NewReader(c.nc)
	dec := codec.Decoder{MaxBody: s.opts.MaxBody}
	for {
		hdr, err := br.Peek(codec.HeaderSize)
		if err != nil {
			return
		}
		h, err := dec.DecodeHeader(hdr)
		if errors.Is(err, codec.ErrTooLarge) {
			// As the gateway: refused at the header, the body never read.
			c.enqueue(codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{
				Reason: protocol.CloseReason_FRAME_TOO_LARGE, Message: "frame too large"}))
			c.closeAfterFlush()
			<-c.quit
			return
		}
		if err != nil || !codec.IsRequest(h.Op) {
			return
		}
		_, _ = br.Discard(codec.HeaderSize)
		body := make([]byte, h.BodyLen)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		s.mu.Lock()
		s.requests[h.Op]++ // on arrival, before any delay or gate
		s.mu.Unlock()
		if l := s.takeLoss(h.Op); l != lossNone {
			s.lose(l, c, h, body)
			return
		}
		switch h.Op {
		case protocol.Op_SYNC:
			s.delaySync()
		case protocol.Op_SYNC_CONVS:
			if gate := s.syncConvsGate(); gate != nil {
				s.answerAt(gate, c, h, body)
				continue
			}
		case protocol.Op_DOWNLOAD, protocol.Op_UPLOAD:
			if gate := s.holdTransfer(h.Op, body); gate != nil {
				s.answerAt(gate, c, h, body)
				continue
			}
		case protocol.Op_LOGIN:
			if gate := s.holdLogin(); gate != nil {
				s.answerAt(gate, c, h, body)
				continue
			}
		}
		s.answer(c, h, body)
	}
}

// answer handles one request of c and replies.
func (s *Server) answer(c *conn, h codec.Header, body []byte) {
	if s.isUnknown(h.Op) {
		c.enqueue(codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{
			Reason: protocol.CloseReason_PROTOCOL_ERROR, Message: "unknown op"}))
		c.closeAfterFlush() // reading on ends when the writer closes
		return
	}
	var reply codec.Body
	err := s.refusal(h.Op)
	if err == nil {
		reply, err = s.handle(c, h.Op, body)
	}
	c.reply(h, reply, err)
	s.afterReply(c, h.Op, reply, err)
}

// answerAt answers a request once gate is closed, unless c ends first; the
// connection's other requests are served meanwhile, as the gateway serves
// a connection's requests side by side.
func (s *Server) answerAt(gate <-chan struct{}, c *conn, h codec.Header, body []byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-gate:
			s.answer(c, h, body)
		case <-c.quit:
		}
	}()
}

// HoldLogins makes LOGIN requests wait, unanswered, until release is
// called, as a login a loaded server answers late does; HeldLogins counts
// them. A connection closed meanwhile gets no answer.
func (s *Server) HoldLogins() (release func()) { return s.holdGate(&s.loginGate) }

// HeldLogins is how many LOGIN requests waited for a HoldLogins release.
func (s *Server) HeldLogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heldLogins
}

// holdLogin returns the gate a LOGIN waits for, nil when none, and counts
// the LOGIN held.
func (s *Server) holdLogin() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loginGate == nil {
		return nil
	}
	s.heldLogins++
	return s.loginGate
}

// bizError is an error reply.
type bizError struct {
	code common.ErrorCode
	msg  string
	// signedOut marks a TOKEN_INVALID refusing a LOGIN's or REFRESH's
	// token of a signed-out device, which closes the connection with
	// SIGNED_OUT.
	signedOut bool
}

// errSignedOut refuses a LOGIN's or REFRESH's token of a device signed out
// since.
var errSignedOut = &bizError{code: common.ErrorCode_TOKEN_INVALID,
	msg: "invalid token: signed out", signedOut: true}

func (e *bizError) Error() string { return e.msg }

func fail(code common.ErrorCode, msg string) error { return &bizError{code: code, msg: msg} }

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *conn) reply(h codec.Header, body codec.Body, err error) {
	var be *bizError
	switch {
	case errors.As(err, &be):
		e := &protocol.ErrorResp{Code: be.code, Message: be.msg}
		c.enqueue(codec.EncodeFrame(codec.ReplyOp(h.Op), codec.FlagError, h.RequestID, e))
	case err != nil:
		e := &protocol.ErrorResp{Code: common.ErrorCode_BAD_REQUEST, Message: err.Error()}
		c.enqueue(codec.EncodeFrame(codec.ReplyOp(h.Op), codec.FlagError, h.RequestID, e))
	default:
		c.enqueue(codec.EncodeFrame(codec.ReplyOp(h.Op), 0, h.RequestID, body))
	}
}
