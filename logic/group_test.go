package logic

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

var ctxBG = context.Background()

// group creates a group owned by owner with members and returns its id.
func (e *env) group(t *testing.T, owner int64, name string, members ...int64) string {
	t.Helper()
	resp, err := e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
		ClientMsgId: "create-" + randHex(t, 4), Name: name, MemberIds: members})
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	if resp.Seq != 1 || !isGroupID(resp.ConvId) {
		t.Fatalf("create ack = %+v, want seq 1 and a group id", resp)
	}
	return resp.ConvId
}

// manage runs one group change by actor and returns its error.
func (e *env) manage(actor int64, conv string, action common.GroupAction,
	ids []int64, name string, role common.GroupRole) (*protocol.GroupChangeResp, error) {
	return e.svc.ManageGroup(ctxBG, session(actor, 1), &protocol.ManageGroupReq{
		ClientMsgId: fmt.Sprintf("m-%d-%s-%d", actor, action, time.Now().UnixNano()),
		ConvId:      conv, Action: action, UserIds: ids, Name: name, Role: role})
}

// sendTo sends a text message to a conversation by id.
func (e *env) sendTo(from int64, conv, text string) (*protocol.SendResp, error) {
	return e.svc.Send(ctxBG, session(from, 1), &protocol.SendReq{ClientMsgId: "s-" + text,
		ConvId: conv, ContentType: common.ContentType_TEXT, Content: []byte(text)})
}

// syncAll returns every message user may read of conv, forward.
func (e *env) syncAll(t *testing.T, user int64, conv string) []*common.Message {
	t.Helper()
	resp, err := e.svc.Sync(ctxBG, session(user, 1), &protocol.SyncReq{ConvId: conv, Limit: 200})
	if err != nil {
		t.Fatalf("sync user %d: %v", user, err)
	}
	return resp.Messages
}

func seqsOf(msgs []*common.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func decodeGroupEvent(t *testing.T, m *common.Message) *common.GroupEvent {
	t.Helper()
	if m.ContentType != common.ContentType_GROUP_EVENT {
		t.Fatalf("seq %d content type %s, want GROUP_EVENT", m.Seq, m.ContentType)
	}
	ev := common.NewGroupEvent()
	if _, err := ev.FastRead(m.Content); err != nil {
		t.Fatalf("decode group event: %v", err)
	}
	return ev
}

func TestGroup_LifecycleIsOneOrderedHistory(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, ann, bob, cid := e.register(t, "owner"), e.register(t, "ann"),
			e.register(t, "bob"), e.register(t, "cid")
		g := e.group(t, owner, "Team", ann, bob, ann) // a repeated id counts once
		steps := []struct {
			actor  int64
			action common.GroupAction
			ids    []int64
			name   string
			role   common.GroupRole
		}{
			{owner, common.GroupAction_ADD, []int64{cid}, "", 0},
			{owner, common.GroupAction_SET_ROLE, []int64{ann}, "", common.GroupRole_ADMIN},
			{ann, common.GroupAction_RENAME, nil, "Team 2", 0},
			{ann, common.GroupAction_REMOVE, []int64{bob}, "", 0},
			{cid, common.GroupAction_LEAVE, nil, "", 0},
		}
		for i, st := range steps {
			resp, err := e.manage(st.actor, g, st.action, st.ids, st.name, st.role)
			if err != nil {
				t.Fatalf("step %d %s: %v", i, st.action, err)
			}
			if resp.Seq != int64(i+2) {
				t.Fatalf("step %d seq %d, want %d", i, resp.Seq, i+2)
			}
		}
		if _, err := e.sendTo(ann, g, "hello"); err != nil {
			t.Fatal(err)
		}
		msgs := e.syncAll(t, owner, g)
		if !slices.Equal(seqsOf(msgs), []int64{1, 2, 3, 4, 5, 6, 7}) {
			t.Fatalf("owner sees seqs %v", seqsOf(msgs))
		}
		if ev := decodeGroupEvent(t, msgs[0]); ev.Action != common.GroupAction_CREATE ||
			!slices.Equal(ev.Targets, []int64{ann, bob}) || ev.Name != "Team" {
			t.Fatalf("create event %+v", ev)
		}
		if ev := decodeGroupEvent(t, msgs[4]); ev.Action != common.GroupAction_REMOVE ||
			msgs[4].SenderId != ann || !slices.Equal(ev.Targets, []int64{bob}) {
			t.Fatalf("remove event %+v by %d", ev, msgs[4].SenderId)
		}
		// Bob was removed at seq 5: he reads up to his removal, nothing after.
		if got := seqsOf(e.syncAll(t, bob, g)); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("removed member sees %v, want 1..5", got)
		}
		// Cid joined at seq 2 and left at 6.
		if got := seqsOf(e.syncAll(t, cid, g)); !slices.Equal(got, []int64{2, 3, 4, 5, 6}) {
			t.Fatalf("member who joined and left sees %v, want 2..6", got)
		}
		info, err := e.svc.GetGroup(ctxBG, session(ann, 1), &protocol.GetGroupReq{ConvId: g})
		if err != nil {
			t.Fatal(err)
		}
		roles := map[int64]common.GroupRole{}
		for _, m := range info.Members {
			roles[m.UserId] = m.Role
		}
		want := map[int64]common.GroupRole{owner: common.GroupRole_OWNER, ann: common.GroupRole_ADMIN}
		if info.Name != "Team 2" || info.OwnerId != owner || !mapsEqual(roles, want) {
			t.Fatalf("group info %+v roles %v", info, roles)
		}
		_, err = e.svc.GetGroup(ctxBG, session(bob, 1), &protocol.GetGroupReq{ConvId: g})
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestGroup_ForbiddenActions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, admin, mem, other, out := e.register(t, "owner"), e.register(t, "admin"),
			e.register(t, "mem"), e.register(t, "other"), e.register(t, "outsider")
		g := e.group(t, owner, "G", admin, mem, other)
		if _, err := e.manage(owner, g, common.GroupAction_SET_ROLE, []int64{admin}, "",
			common.GroupRole_ADMIN); err != nil {
			t.Fatal(err)
		}
		forb, bad := common.ErrorCode_FORBIDDEN, common.ErrorCode_BAD_REQUEST
		tests := []struct {
			name   string
			actor  int64
			action common.GroupAction
			ids    []int64
			role   common.GroupRole
			code   common.ErrorCode
		}{
			{"member removes the owner", mem, common.GroupAction_REMOVE, []int64{owner}, 0, forb},
			{"admin removes the owner", admin, common.GroupAction_REMOVE, []int64{owner}, 0, forb},
			{"member removes a member", mem, common.GroupAction_REMOVE, []int64{other}, 0, forb},
			{"member adds", mem, common.GroupAction_ADD, []int64{out}, 0, forb},
			{"member renames", mem, common.GroupAction_RENAME, nil, 0, forb},
			{"admin grants admin", admin, common.GroupAction_SET_ROLE, []int64{mem}, common.GroupRole_ADMIN, forb},
			{"admin dismisses", admin, common.GroupAction_DISMISS, nil, 0, forb},
			{"owner leaves", owner, common.GroupAction_LEAVE, nil, 0, forb},
			{"outsider adds", out, common.GroupAction_ADD, []int64{out + 1000}, 0, common.ErrorCode_NOT_FOUND},
			{"outsider renames", out, common.GroupAction_RENAME, nil, 0, forb},
			{"remove a non-member", owner, common.GroupAction_REMOVE, []int64{out}, 0, bad},
			{"add a member again", owner, common.GroupAction_ADD, []int64{mem}, 0, bad},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.manage(tt.actor, g, tt.action, tt.ids, "New name", tt.role)
				wantCode(t, err, tt.code)
			})
		}
		// Nothing above changed the history: only CREATE and SET_ROLE.
		if got := seqsOf(e.syncAll(t, owner, g)); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("history %v after refused changes", got)
		}
		// An outsider can neither read nor write.
		_, err := e.svc.Sync(ctxBG, session(out, 1), &protocol.SyncReq{ConvId: g})
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		_, err = e.sendTo(out, g, "let me in")
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		// A group that does not exist answers as one not joined.
		_, err = e.sendTo(owner, newGroupID(), "anyone?")
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func TestGroup_RemovedMemberGetsNothingNew(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, ann, bob := e.register(t, "owner"), e.register(t, "ann"), e.register(t, "bob")
		g := e.group(t, owner, "G", ann, bob)
		if _, err := e.manage(owner, g, common.GroupAction_REMOVE, []int64{bob}, "", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sendTo(ann, g, "after bob left"); err != nil {
			t.Fatal(err)
		}
		_, err := e.sendTo(bob, g, "still here?")
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		// Backward paging from the end stops at his removal too.
		resp, err := e.svc.Sync(ctxBG, session(bob, 1), &protocol.SyncReq{ConvId: g,
			BeforeSeq: 1 << 62, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(resp.Messages); !slices.Equal(got, []int64{1, 2}) || resp.LastSeq != 2 {
			t.Fatalf("removed member pages back %v last %d, want [1 2] last 2", got, resp.LastSeq)
		}
		// His conversation list shows the group as left, ending at his removal.
		convs := e.syncConvs(t, session(bob, 1), "", 50)
		if len(convs.Convs) != 1 || !convs.Convs[0].Left || convs.Convs[0].LastSeq != 2 ||
			convs.Convs[0].LastMessage.GetSeq() != 2 {
			t.Fatalf("removed member's list %+v", convs.Convs)
		}
		// The events of the send went to the members, not to bob.
		evs := e.events(t, 3)
		if r := evs[2].Recipients; !slices.Equal(r, []int64{owner, ann}) {
			t.Fatalf("message after removal went to %v", r)
		}
		if r := evs[1].Recipients; !slices.Contains(r, bob) {
			t.Fatalf("the removal event went to %v, want bob among them", r)
		}
		// Dismissed: nobody sends, everyone still reads.
		if _, err := e.manage(owner, g, common.GroupAction_DISMISS, nil, "", 0); err != nil {
			t.Fatal(err)
		}
		_, err = e.sendTo(ann, g, "hello?")
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		if got := len(e.syncAll(t, ann, g)); got != 4 {
			t.Fatalf("member reads %d messages of a dismissed group, want 4", got)
		}
	})
}

// events reads the first n message events from the stream, by seq.
func (e *env) events(t *testing.T, n int) []*event.MessageEvent {
	t.Helper()
	out := e.streamEvents(t, n)
	slices.SortFunc(out, func(a, b *event.MessageEvent) int { return int(a.Message.Seq - b.Message.Seq) })
	return out
}

// streamEvents reads the first n message events from the stream, in stream
// order, once n are published.
func (e *env) streamEvents(t *testing.T, n int) []*event.MessageEvent {
	t.Helper()
	e.waitPublished(t, uint64(n))
	s, err := e.js.Stream(ctxBG, e.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*event.MessageEvent, 0, n)
	for seq := uint64(1); len(out) < n; seq++ {
		raw, err := s.GetMsg(ctxBG, seq)
		if err != nil {
			t.Fatalf("stream seq %d: %v", seq, err)
		}
		ev := event.NewMessageEvent()
		if _, err := ev.FastRead(raw.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestGroup_MemberCapAndIdempotentCreate(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.svc.cfg.MaxGroupMembers = 3
		owner, a, b, c := e.register(t, "owner"), e.register(t, "aa1"), e.register(t, "bb1"),
			e.register(t, "cc1")
		_, err := e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
			ClientMsgId: "too-big", Name: "G", MemberIds: []int64{a, b, c}})
		wantCode(t, err, common.ErrorCode_TOO_LARGE)
		req := &protocol.CreateGroupReq{ClientMsgId: "c1", Name: "G", MemberIds: []int64{a}}
		first, err := e.svc.CreateGroup(ctxBG, session(owner, 1), req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.svc.CreateGroup(ctxBG, session(owner, 1), req)
		if err != nil || !again.Duplicate || again.ConvId != first.ConvId || again.MsgId != first.MsgId {
			t.Fatalf("retry = %+v, %v; want the first group, duplicate", again, err)
		}
		if _, err := e.manage(owner, first.ConvId, common.GroupAction_ADD, []int64{b}, "", 0); err != nil {
			t.Fatal(err)
		}
		_, err = e.manage(owner, first.ConvId, common.GroupAction_ADD, []int64{c}, "", 0)
		wantCode(t, err, common.ErrorCode_TOO_LARGE)
		_, err = e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
			ClientMsgId: "c2", Name: "G", MemberIds: []int64{a, 999999}})
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		_, err = e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
			ClientMsgId: "c3", Name: ""})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	})
}

func TestGroup_OwnershipTransfer(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, ann := e.register(t, "owner"), e.register(t, "ann")
		g := e.group(t, owner, "G", ann)
		if _, err := e.manage(owner, g, common.GroupAction_SET_ROLE, []int64{ann}, "",
			common.GroupRole_OWNER); err != nil {
			t.Fatal(err)
		}
		// The old owner is an admin now and may leave; the new one may not.
		_, err := e.manage(ann, g, common.GroupAction_LEAVE, nil, "", 0)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		if _, err := e.manage(owner, g, common.GroupAction_LEAVE, nil, "", 0); err != nil {
			t.Fatal(err)
		}
		info, err := e.svc.GetGroup(ctxBG, session(ann, 1), &protocol.GetGroupReq{ConvId: g})
		if err != nil {
			t.Fatal(err)
		}
		if info.OwnerId != ann || len(info.Members) != 1 || info.Members[0].Role != common.GroupRole_OWNER {
			t.Fatalf("after transfer and leave: %+v", info)
		}
	})
}

// Concurrent sends and membership changes share the group's lock: every seq
// is used once, and no message reaches a member removed before it.
func TestGroup_ConcurrentSendsAndChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner := e.register(t, "owner")
		var members []int64
		for i := range 6 {
			members = append(members, e.register(t, fmt.Sprintf("member%d", i)))
		}
		g := e.group(t, owner, "G", members...)
		var wg sync.WaitGroup
		for i, m := range members[:3] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 10 {
					if _, err := e.sendTo(m, g, fmt.Sprintf("m%d-%d", i, j)); err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			}()
		}
		for _, m := range members[3:] {
			if _, err := e.manage(owner, g, common.GroupAction_REMOVE, []int64{m}, "", 0); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		msgs := e.syncAll(t, owner, g)
		if len(msgs) != 1+30+3 {
			t.Fatalf("%d messages, want 34", len(msgs))
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				t.Fatalf("seq %d at %d", m.Seq, i)
			}
		}
		removedAt := map[int64]int64{}
		for _, m := range msgs {
			if m.ContentType == common.ContentType_GROUP_EVENT {
				if ev := decodeGroupEvent(t, m); ev.Action == common.GroupAction_REMOVE {
					removedAt[ev.Targets[0]] = m.Seq
				}
			}
		}
		for _, ev := range e.events(t, len(msgs)) {
			for _, r := range ev.Recipients {
				if at, ok := removedAt[r]; ok && ev.Message.Seq > at {
					t.Fatalf("seq %d went to user %d, removed at %d", ev.Message.Seq, r, at)
				}
			}
		}
	})
}

// SyncConvs reports a group dismissed to those who were members when it
// was dismissed, those who left after it too, and not to one who had left
// before: what the group did afterwards is not theirs. A 1:1 summary
// leaves the field unset.
func TestSyncConvs_ReportsDismissedGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, ann, bob, cat := e.register(t, "owner"), e.register(t, "ann"),
			e.register(t, "bob"), e.register(t, "cat")
		open := e.group(t, owner, "open", ann)
		club := e.group(t, owner, "club", ann, bob, cat)
		p2p := e.sendN(t, owner, ann, 1, "p2p").ConvId
		steps := []struct {
			actor  int64
			action common.GroupAction
		}{
			{cat, common.GroupAction_LEAVE},
			{owner, common.GroupAction_DISMISS},
			{bob, common.GroupAction_LEAVE},
		}
		for _, st := range steps {
			if _, err := e.manage(st.actor, club, st.action, nil, "", 0); err != nil {
				t.Fatalf("%d %s: %v", st.actor, st.action, err)
			}
		}

		tests := []struct {
			name      string
			user      int64
			conv      string
			dismissed *bool
		}{
			{"owner's dismissed group", owner, club, ptr(true)},
			{"member's dismissed group", ann, club, ptr(true)},
			{"left after the dismissal", bob, club, ptr(true)},
			{"left before the dismissal", cat, club, ptr(false)},
			{"open group", owner, open, ptr(false)},
			{"1:1", owner, p2p, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := convOf(t, e.syncConvs(t, session(tt.user, 1), "", 50), tt.conv)
				if !equalPtr(c.Dismissed, tt.dismissed) {
					t.Fatalf("dismissed = %s, want %s", ptrString(c.Dismissed),
						ptrString(tt.dismissed))
				}
			})
		}
	})
}

// convOf returns the summary of conv in resp, failing t when it is missing.
func convOf(t *testing.T, resp *protocol.SyncConvsResp, conv string) *protocol.ConvSummary {
	t.Helper()
	for _, c := range resp.Convs {
		if c.ConvId == conv {
			return c
		}
	}
	t.Fatalf("no %s among %v", conv, convIDs(resp))
	return nil
}

func ptr[T any](v T) *T { return &v }

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
