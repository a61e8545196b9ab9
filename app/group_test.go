package app

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// stream collects what a Session hands to its application.
type stream struct {
	mu   sync.Mutex
	msgs []*common.Message
}

func collect(t *testing.T, s *client.Session) *stream {
	st := &stream{}
	go func() {
		for m := range s.Messages() {
			st.mu.Lock()
			st.msgs = append(st.msgs, m)
			st.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = s.Close() })
	return st
}

// seqs returns the seqs handed over in conv, in order.
func (st *stream) seqs(conv string) []int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []int64
	for _, m := range st.msgs {
		if m.ConvId == conv {
			out = append(out, m.Seq)
		}
	}
	return out
}

func (st *stream) waitSeqs(t *testing.T, who, conv string, want []int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Equal(st.seqs(conv), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s got seqs %v, want %v", who, st.seqs(conv), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openSession(t *testing.T, addr, name, device string) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
		Login: client.LoginParams{Username: name, Password: "correct horse", DeviceID: device}})
	if err != nil {
		t.Fatalf("session %s/%s: %v", name, device, err)
	}
	return s
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// testGroups runs a group through its life over real sessions: every
// member's devices see one history, in order and once; a removed member
// gets nothing after the removal; a recall reaches everyone; a read on one
// device reaches another across a reconnect.
func testGroups(t *testing.T, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tag := time.Now().Format("150405.000")[7:] + client.NewClientMsgID()[:4]
	owner := login(t, addr, "gown"+tag, "phone", true)
	ann := login(t, addr, "gann"+tag, "phone", true)
	bob := login(t, addr, "gbob"+tag, "phone", true)

	ownerS := openSession(t, addr, owner.name, "tablet")
	annS := openSession(t, addr, ann.name, "tablet")
	bobS := openSession(t, addr, bob.name, "tablet")
	ownerSt, annSt, bobSt := collect(t, ownerS), collect(t, annS), collect(t, bobS)

	created, err := ownerS.CreateGroup(ctx, "Team", []int64{ann.id, bob.id})
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	g := created.ConvId
	var wg sync.WaitGroup
	for _, s := range []*client.Session{annS, bobS} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := s.Send(ctx, client.SendParams{ConvID: g, Text: "hi all"}); err != nil {
					t.Errorf("group send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for who, st := range map[string]*stream{"owner": ownerSt, "ann": annSt, "bob": bobSt} {
		st.waitSeqs(t, who, g, seqRange(1, 11))
	}

	if _, err := ownerS.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g,
		Action: common.GroupAction_REMOVE, UserIds: []int64{bob.id}}); err != nil {
		t.Fatalf("remove bob: %v", err)
	}
	if _, err := annS.Send(ctx, client.SendParams{ConvID: g, Text: "bob is gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bobS.Send(ctx, client.SendParams{ConvID: g, Text: "am I?"}); client.CodeOf(err) !=
		common.ErrorCode_FORBIDDEN {
		t.Fatalf("removed member's send: %v, want FORBIDDEN", err)
	}
	ownerSt.waitSeqs(t, "owner", g, seqRange(1, 13))
	annSt.waitSeqs(t, "ann", g, seqRange(1, 13))
	bobSt.waitSeqs(t, "bob", g, seqRange(1, 12)) // his removal, and nothing after

	// Ann recalls her first message; every member's devices get the event.
	first, err := ann.Client.Sync(ctx, g, 1, 1)
	if err != nil || len(first.Messages) != 1 {
		t.Fatalf("sync seq 2: %+v, %v", first, err)
	}
	target := first.Messages[0]
	if target.SenderId != ann.id {
		target = nil
		page, _ := ann.Client.Sync(ctx, g, 1, 20)
		for _, m := range page.Messages {
			if m.SenderId == ann.id && m.ContentType == common.ContentType_TEXT {
				target = m
				break
			}
		}
	}
	if _, err := annS.Recall(ctx, g, target.Seq); err != nil {
		t.Fatalf("recall: %v", err)
	}
	ownerSt.waitSeqs(t, "owner", g, seqRange(1, 14))
	annSt.waitSeqs(t, "ann", g, seqRange(1, 14))
	page, err := owner.Client.Sync(ctx, g, target.Seq-1, 1)
	if err != nil || !page.Messages[0].Recalled {
		t.Fatalf("recalled message in history: %+v, %v", page, err)
	}
	counts, err := owner.Client.ReadCounts(ctx, g, []int64{13})
	if err != nil || counts.MemberCount != 2 {
		t.Fatalf("read counts %+v, %v", counts, err)
	}

	// Ann's phone reads everything; her tablet reconnects and sees it.
	if _, err := ann.Client.MarkRead(ctx, g, 14); err != nil {
		t.Fatal(err)
	}
	_ = annS.Close()
	annC, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer annC.Close()
	if _, err := annC.Login(ctx, client.LoginParams{Username: ann.name, Password: "correct horse",
		DeviceID: "tablet"}); err != nil {
		t.Fatal(err)
	}
	convs, err := annC.SyncConvs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range convs.Convs {
		if c.ConvId == g && (c.ReadSeq != 14 || c.Unread != 0 || c.Name != "Team" || c.MemberCount != 2) {
			t.Fatalf("ann's tablet after reconnect: %+v", c)
		}
	}
}

// A member added to a group with history reads it from the addition on:
// the Session starts the group at its first readable message, whether the
// device starts at the first message or at the latest.
func TestSession_AddedToAGroupLater(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	for _, latest := range []bool{false, true} {
		t.Run(map[bool]string{false: "from the first", true: "at the latest"}[latest],
			func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				tag := client.NewClientMsgID()[:6]
				owner := login(t, addr, "lown"+tag, "phone", true)
				late := login(t, addr, "llat"+tag, "phone", true)
				created, err := owner.Client.CreateGroup(ctx, "Later", nil, "")
				if err != nil {
					t.Fatalf("create group: %v", err)
				}
				g := created.ConvId
				for range 3 {
					if _, err := owner.Client.Send(ctx, client.SendParams{ConvID: g,
						Text: "before"}); err != nil {
						t.Fatal(err)
					}
				}
				s, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
					StartAtLatest: latest, Login: client.LoginParams{Username: late.name,
						Password: "correct horse", DeviceID: "tablet"}})
				if err != nil {
					t.Fatal(err)
				}
				st := collect(t, s)
				if _, err := owner.Client.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g,
					Action: common.GroupAction_ADD, UserIds: []int64{late.id}}); err != nil {
					t.Fatalf("add: %v", err)
				}
				if _, err := owner.Client.Send(ctx, client.SendParams{ConvID: g,
					Text: "after"}); err != nil {
					t.Fatal(err)
				}
				st.waitSeqs(t, "the added member", g, []int64{5, 6})
			})
	}
}
