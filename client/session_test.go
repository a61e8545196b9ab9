package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// stream collects what a Session hands over, per conversation.
type stream struct {
	mu   sync.Mutex
	seqs map[string][]int64
	msgs []*common.Message
}

func collectSession(t *testing.T, s *client.Session) *stream {
	t.Helper()
	st := &stream{seqs: make(map[string][]int64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range s.Messages() {
			st.mu.Lock()
			st.seqs[m.ConvId] = append(st.seqs[m.ConvId], m.Seq)
			st.msgs = append(st.msgs, m)
			st.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = s.Close(); <-done })
	return st
}

func (st *stream) count(conv string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.seqs[conv])
}

// checkExactly fails unless conv was handed over as exactly 1..n.
func (st *stream) checkExactly(t *testing.T, conv string, n int) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	got := st.seqs[conv]
	if len(got) != n {
		t.Fatalf("conv %s: got %d messages, want %d: %v", conv, len(got), n, got)
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("conv %s: message %d has seq %d: %v", conv, i, seq, got)
		}
	}
}

// checkSeqs fails unless conv was handed over as exactly want.
func (st *stream) checkSeqs(t *testing.T, conv string, want ...int64) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	if got := st.seqs[conv]; !slices.Equal(got, want) {
		t.Fatalf("conv %s: handed over %v, want %v", conv, got, want)
	}
}

func openSession(t *testing.T, s *clienttest.Server, user, device string,
	tweak func(*client.SessionConfig)) *client.Session {
	t.Helper()
	cfg := client.SessionConfig{
		Addr: s.Addr(),
		Login: client.LoginParams{Username: user, Password: passwordOf(user),
			DeviceID: device},
		MinBackoff:  10 * time.Millisecond,
		MaxBackoff:  50 * time.Millisecond,
		AckInterval: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	sess, err := client.OpenSession(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// slowReconnect leaves time to send while the session is away and counts
// its disconnections.
func slowReconnect(disconnects *atomic.Int32) func(*client.SessionConfig) {
	return func(c *client.SessionConfig) {
		c.MinBackoff = 300 * time.Millisecond
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				disconnects.Add(1)
			}
		}
	}
}

func sendN(t *testing.T, c *client.Client, to int64, n int, label string) {
	t.Helper()
	for i := range n {
		_, err := c.Send(context.Background(), client.SendParams{ToUserID: to,
			Text: fmt.Sprintf("%s %d", label, i)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSession_FillsGapAndResumesAfterReconnect(t *testing.T) {
	s := startServer(t, clienttest.Options{SyncLimit: 7})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	var disconnects atomic.Int32
	sess := openSession(t, s, "alice", "phone", slowReconnect(&disconnects))
	st := collectSession(t, sess)

	// Three pushes are lost on the way: the fourth reveals the gap.
	s.DropPushes(3)
	sendN(t, bob, aliceID, 4, "gap")
	waitFor(t, "gap filled", func() bool { return st.count(conv) == 4 })

	// Dropped, then 30 messages while away (several sync pages), then more.
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitFor(t, "alice offline", func() bool { return disconnects.Load() == 1 })
	sendN(t, bob, aliceID, 30, "away")
	waitFor(t, "alice back", func() bool { return s.Online("alice") == 1 })
	sendN(t, bob, aliceID, 5, "back")
	waitFor(t, "all 39", func() bool { return st.count(conv) == 39 })
	st.checkExactly(t, conv, 39)
	waitFor(t, "delivered position acked", func() bool {
		return s.DeliveredSeq("alice", "phone", conv) == 39
	})
}

func TestSession_OwnAndOtherDeviceMessagesInOneStream(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	_, aliceID := loginNew(t, s, "alice", client.Options{})
	conv := client.P2PConvID(aliceID, bobID)
	phone := openSession(t, s, "alice", "phone", nil)
	laptop := openSession(t, s, "alice", "laptop", nil)
	onPhone, onLaptop := collectSession(t, phone), collectSession(t, laptop)

	ctx := context.Background()
	for i := range 10 {
		from := phone
		if i%2 == 1 {
			from = laptop
		}
		if _, err := from.Send(ctx, client.SendParams{ToUserID: bobID,
			Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		sendN(t, bob, aliceID, 1, "reply")
	}
	for _, st := range []*stream{onPhone, onLaptop} {
		waitFor(t, "20 messages", func() bool { return st.count(conv) == 20 })
		st.checkExactly(t, conv, 20)
	}
	if m := onPhone.msgs[0]; m.SenderId != aliceID || string(m.Content) != "0" ||
		m.SenderDevice != "phone" {
		t.Fatalf("own first message handed over as %+v", m)
	}
}

func TestSession_OfflineForAThousandMessages(t *testing.T) {
	s := startServer(t, clienttest.Options{SyncLimit: 200})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sendN(t, bob, aliceID, 1000, "offline")

	sess := openSession(t, s, "alice", "tablet", nil)
	st := collectSession(t, sess)
	waitFor(t, "1000 messages", func() bool { return st.count(conv) == 1000 })
	st.checkExactly(t, conv, 1000)
}

// olderServers are the two ways a server older than an op refuses it:
// logic's UNSUPPORTED, or a gateway closing the connection for an opcode
// it does not know.
var olderServers = []struct {
	name  string
	older func(*clienttest.Server, ...protocol.Op)
}{
	{name: "answers UNSUPPORTED", older: (*clienttest.Server).Unsupported},
	{name: "closes on unknown opcodes", older: (*clienttest.Server).Unknown},
}

func TestSession_ResumesOnServerWithoutNewOps(t *testing.T) {
	for _, tt := range olderServers {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_SYNC_CONVS, protocol.Op_DELIVERED)
			bob, aliceID, conv := pair(t, s, "bob", "alice")
			var disconnects, resumes atomic.Int32
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				slowReconnect(&disconnects)(c)
				countDisconnects := c.OnEvent
				c.OnEvent = func(e client.Event) {
					countDisconnects(e)
					if e.Kind == client.EventResumed {
						resumes.Add(1)
					}
				}
			})
			st := collectSession(t, sess)
			// A conversation that begins while the session is away is
			// found only by SYNC_CONVS: the fallback starts after a resume.
			waitFor(t, "resumed", func() bool { return resumes.Load() > 0 })

			sendN(t, bob, aliceID, 2, "before")
			waitFor(t, "2 messages", func() bool { return st.count(conv) == 2 })
			before := disconnects.Load()
			s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
			waitFor(t, "alice offline", func() bool { return disconnects.Load() > before })
			sendN(t, bob, aliceID, 3, "away")
			waitFor(t, "5 messages", func() bool { return st.count(conv) == 5 })
			st.checkExactly(t, conv, 5)
		})
	}
}

// A Session that met a server without SYNC_CONVS (a release older than the
// op, during a rolling upgrade) asks again once it may have been upgraded:
// a conversation that began while the device was away is listed on its
// return, where the older server's fallback fetches only the ones it knows.
func TestSession_ListsAgainOnceTheServerHasSyncConvs(t *testing.T) {
	for _, tt := range olderServers {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_SYNC_CONVS)
			carol, aliceID, conv := pair(t, s, "carol", "alice")
			gate := &clienttest.AwayGate{}
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.OnEvent = gate.OnEvent
				c.ResyncInterval = 100 * time.Millisecond
			})
			st := collectSession(t, sess)
			waitFor(t, "a resume without SYNC_CONVS", func() bool { return gate.Resumes() > 0 })

			s.Upgrade(protocol.Op_SYNC_CONVS)
			gate.Hold(t)
			waitFor(t, "alice away", func() bool {
				// Again until it takes: the older server may be closing
				// a connection of hers that is logging in.
				s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
				return gate.Away()
			})
			sendN(t, carol, aliceID, 3, "while away")
			gate.Release()
			waitFor(t, "the new conversation", func() bool { return st.count(conv) == 3 })
			st.checkExactly(t, conv, 3)
		})
	}
}

// A Session that met a server without DELIVERED reports what it handed over
// once the server has it: left unreported, the server keeps an older
// position for the device, from which its next process (on a store of its
// own) hands the same messages over again.
func TestSession_ReportsDeliveredOnceTheServerHasIt(t *testing.T) {
	for _, tt := range olderServers {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_DELIVERED)
			bob, aliceID, conv := pair(t, s, "bob", "alice")
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.ResyncInterval = 100 * time.Millisecond
			})
			st := collectSession(t, sess)
			sendN(t, bob, aliceID, 3, "before the upgrade")
			waitFor(t, "3 messages", func() bool { return st.count(conv) == 3 })
			waitFor(t, "a DELIVERED refused", func() bool {
				return s.Requests(protocol.Op_DELIVERED) > 0
			})

			s.Upgrade(protocol.Op_DELIVERED)
			waitFor(t, "the position reported", func() bool {
				return s.DeliveredSeq("alice", "phone", conv) == 3
			})
		})
	}
}

func TestSession_StartAtLatestSkipsOldHistory(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sendN(t, bob, aliceID, 5, "old")
	nextMilli()

	sess := openSession(t, s, "alice", "new", func(c *client.SessionConfig) {
		c.StartAtLatest = true
	})
	st := collectSession(t, sess)
	waitFor(t, "resumed at 5", func() bool { return sess.Position(conv) == 5 })
	sendN(t, bob, aliceID, 1, "new")
	waitFor(t, "one new message", func() bool { return st.count(conv) == 1 })
	st.checkSeqs(t, conv, 6)
}

// A listing that reports messages stored after the login, before their
// pushes (or instead of them: the login's race), hands those over with
// StartAtLatest; only the history from before the login is skipped.
func TestSession_StartAtLatestKeepsWhatTheListingShowsAfterTheLogin(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, aliceID, conv := pair(t, s, "carol", "alice")
	sendN(t, carol, aliceID, 3, "old")
	nextMilli()

	release := s.HoldSyncConvs()
	defer release()
	sess := openSession(t, s, "alice", "new", func(c *client.SessionConfig) {
		c.StartAtLatest = true
	})
	st := collectSession(t, sess)
	s.DropPushes(2)
	sendN(t, carol, aliceID, 2, "new")
	release()
	waitFor(t, "the two new messages", func() bool { return st.count(conv) == 2 })
	st.checkSeqs(t, conv, 4, 5)
}

// A conversation begun after the login whose first message was not pushed
// is handed over from that first message when the second one's push comes.
func TestSession_StartAtLatestFetchesWhatCameBeforeAPushedMessage(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, aliceID, conv := pair(t, s, "carol", "alice")

	var resumes atomic.Int32
	sess := openSession(t, s, "alice", "new", func(c *client.SessionConfig) {
		c.StartAtLatest, c.OnEvent = true, countResumes(&resumes)
	})
	st := collectSession(t, sess)
	waitFor(t, "resumed", func() bool { return resumes.Load() > 0 })
	s.DropPushes(1)
	sendN(t, carol, aliceID, 2, "new")
	waitFor(t, "both messages", func() bool { return st.count(conv) == 2 })
	st.checkSeqs(t, conv, 1, 2)
}

// nextMilli waits for the millisecond clock to move on, so that what the
// test stores next is later, by the server's clock, than what it stored
// before.
func nextMilli() {
	for now := time.Now().UnixMilli(); time.Now().UnixMilli() == now; {
		time.Sleep(100 * time.Microsecond)
	}
}

func TestSession_EndsOnKick(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	collectSession(t, sess)
	s.CloseUser("alice", protocol.CloseReason_KICKED, -time.Millisecond)
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still up after KICKED")
	}
	var ce *client.CloseError
	if err := sess.Err(); !errors.Is(err, client.ErrSessionEnded) || !errors.As(err, &ce) ||
		ce.Reason != protocol.CloseReason_KICKED {
		t.Fatalf("Err = %v, want the KICKED close", err)
	}
	if _, err := sess.Send(context.Background(), client.SendParams{ToUserID: 1,
		Text: "x"}); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Send after the end = %v", err)
	}
}

func TestSession_FirstConnectTriesEveryGateway(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	down := clienttest.ClosedAddr(t)

	// The first gateway is down at start: the fallback takes the session,
	// and the event says so.
	connectedAt := make(chan string, 1)
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.Addr, c.Fallbacks = down, []string{s.Addr()}
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventConnected {
				select {
				case connectedAt <- e.Addr:
				default: // only the first is checked; OnEvent must not block
				}
			}
		}
	})
	collectSession(t, sess)
	if n := s.Online("alice"); n != 2 { // loginNew's and the session's
		t.Fatalf("alice has %d connections, want 2", n)
	}
	select {
	case addr := <-connectedAt:
		if addr != s.Addr() {
			t.Fatalf("connected at %q, want %q", addr, s.Addr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EventConnected")
	}

	// With every gateway down the first attempt fails, on the last one.
	last := clienttest.ClosedAddr(t)
	_, err := client.OpenSession(context.Background(), client.SessionConfig{Addr: down,
		Fallbacks: []string{last}, Login: client.LoginParams{Username: "alice",
			Password: passwordOf("alice")}})
	if err == nil || !strings.Contains(err.Error(), last) {
		t.Fatalf("OpenSession = %v, want the last address's dial error", err)
	}
}

func TestSession_RejectsBadConfigAndCredentials(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	tests := []struct {
		name string
		cfg  client.SessionConfig
		code common.ErrorCode
	}{
		{name: "no address", cfg: client.SessionConfig{
			Login: client.LoginParams{Token: "t"}}},
		{name: "no credentials", cfg: client.SessionConfig{Addr: s.Addr()}},
		{name: "wrong password", cfg: client.SessionConfig{Addr: s.Addr(),
			Login: client.LoginParams{Username: "alice", Password: "nope"}},
			code: common.ErrorCode_INVALID_CREDENTIALS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.OpenSession(context.Background(), tt.cfg)
			if err == nil || client.CodeOf(err) != tt.code ||
				(tt.code == 0 && !errors.Is(err, client.ErrBadParams)) {
				t.Fatalf("OpenSession = %v, want code %v", err, tt.code)
			}
		})
	}
}

func TestSession_PushesDuringResumeNeitherLostNorRepeated(t *testing.T) {
	s := startServer(t, clienttest.Options{SyncLimit: 5})
	s.SlowSync(10 * time.Millisecond)
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	var logins atomic.Int32
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventConnected {
				logins.Add(1)
			}
		}
	})
	st := collectSession(t, sess)

	// Bob keeps sending while alice is dropped three times, so pushes race
	// with each catch-up.
	const total = 150
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range total {
			if _, err := bob.Send(context.Background(), client.SendParams{ToUserID: aliceID,
				Text: fmt.Sprint(i)}); err != nil {
				t.Error(err)
				return
			}
			// A steady pace, so that each drop misses some pushes.
			time.Sleep(time.Millisecond)
		}
	}()
	for drop := range 3 {
		waitFor(t, "progress", func() bool { return st.count(conv) > 30*(drop+1) })
		s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
		// The next drop may cut this catch-up short: so much the better.
		waitFor(t, "login again", func() bool { return logins.Load() == int32(drop+2) })
	}
	<-sent
	waitFor(t, "every message", func() bool { return st.count(conv) == total })
	st.checkExactly(t, conv, total)
}

func TestSession_SendOutlastsServerFailures(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	st := collectSession(t, sess)

	// More failures than one connection's retries: the Session keeps going.
	s.FailSends(6)
	ack, err := sess.Send(context.Background(), client.SendParams{ToUserID: bobID, Text: "x"})
	if err != nil || ack.Seq != 1 || s.SendCount() != 7 {
		t.Fatalf("Send = %+v, %v after %d attempts", ack, err, s.SendCount())
	}
	waitFor(t, "own message handed over", func() bool { return st.count(ack.ConvId) == 1 })
}

func TestSession_ResyncFindsALostLastPush(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.ResyncInterval = 20 * time.Millisecond
	})
	st := collectSession(t, sess)

	// The only push is lost and nothing follows it in the conversation.
	s.DropPushes(1)
	sendN(t, bob, aliceID, 1, "lost")
	waitFor(t, "the periodic resync", func() bool { return st.count(conv) == 1 })
}

// Messages of more conversations than one DELIVERED may carry (500) handed
// over between two flushes are acknowledged in several requests; in one,
// the server refused them all at every flush.
func TestSession_AcknowledgesManyConversationsInBatches(t *testing.T) {
	const convs = 520
	s := startServer(t, clienttest.Options{})
	_, aliceID := loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // one flush, when AckBatch messages are in
		c.AckBatch = convs
	})
	st := collectSession(t, sess)

	var ids []string
	for i := range convs {
		peer, peerID := loginNew(t, s, fmt.Sprintf("peer%03d", i), client.Options{})
		sendN(t, peer, aliceID, 1, "hello")
		_ = peer.Close()
		ids = append(ids, client.P2PConvID(aliceID, peerID))
	}
	waitFor(t, "every message handed over", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.msgs) == convs
	})
	waitFor(t, "every position acknowledged", func() bool {
		for _, conv := range ids {
			if s.DeliveredSeq("alice", "phone", conv) != 1 {
				return false
			}
		}
		return true
	})
}

// A refused CreateGroup returns its error; it used to dereference the nil
// reply and crash the app (the chat client at any group name the server
// refused).
func TestSession_CreateGroupReturnsItsError(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	s.Unsupported(protocol.Op_CREATE_GROUP)
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	collectSession(t, sess)
	_, err := sess.CreateGroup(context.Background(), "friends", []int64{bobID})
	if client.CodeOf(err) != common.ErrorCode_UNSUPPORTED {
		t.Fatalf("CreateGroup = %v, want UNSUPPORTED", err)
	}
}

// A resume whose fetched messages were not all handed over when the
// session closed keeps the previous cursor, so that the next session with
// the same positions lists those conversations again and fetches the rest.
func TestSession_CursorWaitsForTheHandOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sendN(t, bob, aliceID, 3, "while away")

	positions := client.NewMemoryPositions()
	var resumes atomic.Int32
	first := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.Positions, c.Buffer = positions, 1 // the app reads nothing: one fits
		c.OnEvent = countResumes(&resumes)
	})
	waitFor(t, "resumed", func() bool { return resumes.Load() > 0 })
	waitFor(t, "the one message the channel holds", func() bool {
		seq, _ := positions.Position(conv)
		return seq == 1
	})
	_ = first.Close()

	second := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.Positions = positions
	})
	st := collectSession(t, second)
	waitFor(t, "the two messages not handed over", func() bool { return st.count(conv) == 2 })
	st.checkSeqs(t, conv, 2, 3)
}

// pair registers sender, then receiver, on s; it returns the sender's
// client, the receiver's id and their conversation.
func pair(t *testing.T, s *clienttest.Server, sender, receiver string) (*client.Client, int64,
	string) {
	t.Helper()
	c, senderID := loginNew(t, s, sender, client.Options{})
	_, receiverID := loginNew(t, s, receiver, client.Options{})
	return c, receiverID, client.P2PConvID(receiverID, senderID)
}
