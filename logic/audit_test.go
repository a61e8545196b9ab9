package logic

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A RECALL or EDIT names a stored message: in a 1:1 conversation never
// started there is none, and the request must not start the conversation,
// which would show in the peer's list with nothing in it (and let typing
// through, which a conversation without messages does not forward).
func TestRecallEdit_NeverStartAConversation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, carol := e.register(t, "alice"), e.register(t, "carol")
		conv := p2pConvID(alice, carol)
		_, err := e.svc.Recall(ctxBG, session(alice, 1),
			&protocol.RecallReq{ClientMsgId: "r1", ConvId: conv, Seq: 1})
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		_, err = e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e1",
			ConvId: conv, Seq: 1, ContentType: common.ContentType_TEXT, Content: []byte("x")})
		wantCode(t, err, common.ErrorCode_NOT_FOUND)

		if got := e.syncConvs(t, session(carol, 1), "", 50).Convs; len(got) != 0 {
			t.Fatalf("carol's list after alice's recall and edit = %+v, want empty", got)
		}
		var rows int64
		if err := e.db.Model(&convRow{}).Count(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if rows != 0 {
			t.Fatalf("%d conversation rows, want none", rows)
		}

		// Once started, a recall of a seq not stored is NOT_FOUND as before.
		e.sendN(t, alice, carol, 1, "hi")
		_, err = e.svc.Recall(ctxBG, session(alice, 1),
			&protocol.RecallReq{ClientMsgId: "r2", ConvId: conv, Seq: 7})
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
	})
}

// A live read receipt tells the peer that the reader is online now, which a
// block hides (GET_PRESENCE reads the blocker offline): like typing, it is
// not sent across a block, either way. The reader's own devices still hear.
func TestMarkRead_NoReceiptAcrossABlock(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		// bob blocks alice, and carol bob: bob reads as the blocker in one
		// conversation and as the blocked in the other.
		e.sendN(t, alice, bob, 2, "a")
		e.sendN(t, carol, bob, 2, "c")
		for blocker, blocked := range map[int64]int64{bob: alice, carol: bob} {
			_, err := e.svc.Block(ctxBG, session(blocker, 5),
				&protocol.BlockReq{UserId: blocked, Blocked: true})
			wantCode(t, err, common.ErrorCode_OK)
		}
		sub := e.subscribe(t, e.names.NotifySubject())

		for _, peer := range []int64{alice, carol} {
			conv := p2pConvID(bob, peer)
			_, err := e.svc.MarkRead(ctxBG, session(bob, 9),
				&protocol.MarkReadReq{ConvId: conv, Seq: 2})
			wantCode(t, err, common.ErrorCode_OK)
			ev := nextNotify(t, sub)
			if ev.Notify.Read_ == nil || !slices.Equal(ev.Recipients, []int64{bob}) {
				t.Fatalf("bob's read of %s went to %v (%+v), want only bob",
					conv, ev.Recipients, ev.Notify)
			}
		}
	})
}

// failLine returns the fields of the last "request failed" line of op in
// logs.
func failLine(t *testing.T, logs *syncbuf.Buffer, op string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) == nil && fields["op"] == op &&
			fields["message"] == "request failed" {
			last = fields
		}
	}
	if last == nil {
		t.Fatalf("no failure of %s logged", op)
	}
	return last
}

// Every refusal is logged at debug with the ids it was about, so that an
// operator can tell from the log whom a FORBIDDEN or NOT_FOUND concerned.
func TestRefusals_LogTheIDsInvolved(t *testing.T) {
	logs := &syncbuf.Buffer{}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, alice, bob, 1, "hi")
	_, err := e.svc.Block(ctxBG, session(bob, 1), &protocol.BlockReq{UserId: alice, Blocked: true})
	wantCode(t, err, common.ErrorCode_OK)
	const nobody = 987654
	tests := []struct {
		op   string
		call func() error
		code common.ErrorCode
		want map[string]any // JSON numbers decode as float64
	}{
		{"send", func() error {
			_, err := e.svc.Send(ctxBG, session(alice, 1), &protocol.SendReq{ClientMsgId: "c1",
				ToUserId: bob, ContentType: common.ContentType_TEXT, Content: []byte("x")})
			return err
		}, common.ErrorCode_FORBIDDEN, map[string]any{"user": float64(alice), "to": float64(bob)}},
		{"send", func() error {
			_, err := e.svc.Send(ctxBG, session(alice, 1), &protocol.SendReq{ClientMsgId: "c2",
				ConvId: "p2p:7:8", ContentType: common.ContentType_TEXT, Content: []byte("x")})
			return err
		}, common.ErrorCode_FORBIDDEN, map[string]any{"user": float64(alice), "conv": "p2p:7:8"}},
		{"block", func() error {
			_, err := e.svc.Block(ctxBG, session(alice, 1), &protocol.BlockReq{UserId: nobody})
			return err
		}, common.ErrorCode_NOT_FOUND, map[string]any{"user": float64(alice),
			"target": float64(nobody)}},
		{"get_user", func() error {
			_, err := e.svc.GetUser(ctxBG, session(alice, 1), &protocol.GetUserReq{UserId: nobody})
			return err
		}, common.ErrorCode_NOT_FOUND, map[string]any{"user": float64(alice),
			"target": float64(nobody)}},
		{"get_user", func() error {
			_, err := e.svc.GetUser(ctxBG, session(alice, 1), &protocol.GetUserReq{Username: "a!"})
			return err
		}, common.ErrorCode_BAD_REQUEST, map[string]any{"user": float64(alice), "username": "a!"}},
	}
	for _, tt := range tests {
		wantCode(t, tt.call(), tt.code)
		got := failLine(t, logs, tt.op)
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s refusal logged %s=%v, want %v (line %v)", tt.op, k, got[k], v, got)
			}
		}
	}
}

// An RPC whose request struct is missing (a caller other than the gateway,
// which always sends one) reads as an empty request: an answer, never a
// panic in the handler.
func TestHandlers_MissingRequestReadsAsEmpty(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	s, c, ss := e.svc, ctxBG, session(e.register(t, "alice"), 1)
	ok, bad := common.ErrorCode_OK, common.ErrorCode_BAD_REQUEST
	tests := []struct {
		op   string
		call func() error
		code common.ErrorCode
	}{
		{"send", func() error { _, err := s.Send(c, ss, nil); return err }, bad},
		{"sync", func() error { _, err := s.Sync(c, ss, nil); return err }, bad},
		{"sync_convs", func() error { _, err := s.SyncConvs(c, ss, nil); return err }, ok},
		{"create_group", func() error { _, err := s.CreateGroup(c, ss, nil); return err }, bad},
		{"manage_group", func() error { _, err := s.ManageGroup(c, ss, nil); return err }, bad},
		{"get_group", func() error { _, err := s.GetGroup(c, ss, nil); return err }, bad},
		{"recall", func() error { _, err := s.Recall(c, ss, nil); return err }, bad},
		{"edit", func() error { _, err := s.Edit(c, ss, nil); return err }, bad},
		{"read_counts", func() error { _, err := s.ReadCounts(c, ss, nil); return err }, bad},
		{"delivered", func() error { _, err := s.Delivered(c, ss, nil); return err }, ok},
		{"mark_read", func() error { _, err := s.MarkRead(c, ss, nil); return err }, bad},
		{"get_presence", func() error { _, err := s.GetPresence(c, ss, nil); return err }, ok},
		{"watch_presence", func() error { _, err := s.WatchPresence(c, ss, nil); return err }, ok},
		{"mute_conv", func() error { _, err := s.MuteConv(c, ss, nil); return err }, bad},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s of a missing request panicked: %v", tt.op, r)
				}
			}()
			wantCode(t, tt.call(), tt.code)
		})
	}
}

// A group name is shown in every member's list, as a nickname is: control
// characters (a newline, a terminal escape) are refused in both.
func TestGroupName_RefusesControlCharacters(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, mem := e.register(t, "owner"), e.register(t, "mem")
	g := e.group(t, owner, "G", mem)
	for _, name := range []string{"line\nbreak", "esc\x1b[2J", "nul\x00", "c1\u0085"} {
		_, err := e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
			ClientMsgId: "c-" + randHex(t, 4), Name: name, MemberIds: []int64{mem}})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		_, err = e.manage(owner, g, common.GroupAction_RENAME, nil, name, 0)
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	}
	if _, err := e.manage(owner, g, common.GroupAction_RENAME, nil, "Café ☕", 0); err != nil {
		t.Fatalf("rename to a plain name: %v", err)
	}
}

// A user outside a 1:1 conversation, whose id is guessable, is refused by
// every request about it; DELIVERED skips it, as documented, storing nothing.
func TestOutsider_RefusedInAOneToOne(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	conv := e.sendN(t, alice, bob, 2, "hi").ConvId
	s, c, ss := e.svc, ctxBG, session(carol, 1)
	forb := common.ErrorCode_FORBIDDEN
	tests := []struct {
		op   string
		call func() error
	}{
		{"sync", func() error {
			_, err := s.Sync(c, ss, &protocol.SyncReq{ConvId: conv})
			return err
		}},
		{"mark_read", func() error {
			_, err := s.MarkRead(c, ss, &protocol.MarkReadReq{ConvId: conv, Seq: 2})
			return err
		}},
		{"read_counts", func() error {
			_, err := s.ReadCounts(c, ss, &protocol.ReadCountsReq{ConvId: conv, Seqs: []int64{1}})
			return err
		}},
		{"mute_conv", func() error {
			_, err := s.MuteConv(c, ss, &protocol.MuteConvReq{ConvId: conv, Muted: true})
			return err
		}},
		{"typing", func() error { _, err := s.Typing(c, ss, typingReq(conv, true)); return err }},
		{"recall", func() error {
			_, err := s.Recall(c, ss, &protocol.RecallReq{ClientMsgId: "r", ConvId: conv, Seq: 1})
			return err
		}},
		{"edit", func() error {
			_, err := s.Edit(c, ss, &protocol.EditReq{ClientMsgId: "e", ConvId: conv, Seq: 1,
				ContentType: common.ContentType_TEXT, Content: []byte("mine now")})
			return err
		}},
		{"send", func() error { _, err := e.sendTo(carol, conv, "let me in"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) { wantCode(t, tt.call(), forb) })
	}
	_, err := s.Delivered(c, ss, &protocol.DeliveredReq{Positions: []*protocol.ConvPos{
		{ConvId: conv, Seq: 2}}})
	wantCode(t, err, common.ErrorCode_OK)
	var rows int64
	err = e.db.Model(&deliveredRow{}).Where("user_id = ?", carol).Count(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	if rows != 0 || e.countMessages(t) != 2 {
		t.Fatalf("carol left %d delivered rows and %d messages, want 0 and 2", rows,
			e.countMessages(t))
	}
}

// A removed member keeps what docs/protocol.md grants (history up to the
// removal, positions capped there) and is refused the rest, including a
// change of their own message sent while a member and the read counts of
// the members who stayed.
func TestFormerMember_KeepsHistoryOnly(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, ann, bob := e.register(t, "owner"), e.register(t, "ann"), e.register(t, "bob")
	g := e.group(t, owner, "G", ann, bob)
	mine, err := e.sendTo(bob, g, "bob's") // seq 2
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.manage(owner, g, common.GroupAction_REMOVE, []int64{bob}, "", 0); err != nil {
		t.Fatal(err) // seq 3
	}
	if _, err := e.sendTo(ann, g, "after"); err != nil { // seq 4
		t.Fatal(err)
	}
	ss, forb := session(bob, 1), common.ErrorCode_FORBIDDEN

	read, err := e.svc.MarkRead(ctxBG, ss, &protocol.MarkReadReq{ConvId: g, Seq: 1 << 62})
	if err != nil || read.ReadSeq != 3 {
		t.Fatalf("mark read = %+v, %v; want capped at the removal, 3", read, err)
	}
	// Read counts are about today's members, whom GET_GROUP does not show
	// him either: refused, even for a seq he could read.
	_, err = e.svc.ReadCounts(ctxBG, ss, &protocol.ReadCountsReq{ConvId: g,
		Seqs: []int64{2, 4}})
	wantCode(t, err, forb)
	_, err = e.svc.Recall(ctxBG, ss, &protocol.RecallReq{ClientMsgId: "r", ConvId: g,
		Seq: mine.Seq})
	wantCode(t, err, forb)
	_, err = e.svc.Edit(ctxBG, ss, &protocol.EditReq{ClientMsgId: "e", ConvId: g, Seq: mine.Seq,
		ContentType: common.ContentType_TEXT, Content: []byte("edited")})
	wantCode(t, err, forb)
	_, err = e.svc.GetGroup(ctxBG, ss, &protocol.GetGroupReq{ConvId: g})
	wantCode(t, err, forb)
	_, err = e.svc.Typing(ctxBG, ss, typingReq(g, true))
	wantCode(t, err, forb)
	_, err = e.manage(bob, g, common.GroupAction_LEAVE, nil, "", 0)
	wantCode(t, err, forb)
}

// Roles hold against the requests a member or admin could try to climb
// with, and a dismissed group takes no change from anyone but a LEAVE
// (TestGroup_LeaveADismissedGroup).
func TestGroup_NoClimbingAndNothingAfterDismiss(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, adm, mem := e.register(t, "owner"), e.register(t, "adm"), e.register(t, "mem")
	g := e.group(t, owner, "G", adm, mem)
	if _, err := e.manage(owner, g, common.GroupAction_SET_ROLE, []int64{adm}, "",
		common.GroupRole_ADMIN); err != nil {
		t.Fatal(err)
	}
	forb, bad := common.ErrorCode_FORBIDDEN, common.ErrorCode_BAD_REQUEST
	owners := common.GroupRole_OWNER
	tests := []struct {
		name  string
		actor int64
		ids   []int64
		role  common.GroupRole
		code  common.ErrorCode
	}{
		{"admin makes itself owner", adm, []int64{adm}, owners, bad},
		{"admin hands ownership on", adm, []int64{mem}, owners, forb},
		{"admin demotes the owner", adm, []int64{owner}, common.GroupRole_MEMBER, forb},
		{"member makes itself admin", mem, []int64{mem}, common.GroupRole_ADMIN, bad},
		{"member promotes another", mem, []int64{adm}, common.GroupRole_ADMIN, forb},
		{"owner names two owners", owner, []int64{adm, mem}, owners, bad},
		{"owner sets an unknown role", owner, []int64{mem}, 99, bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.manage(tt.actor, g, common.GroupAction_SET_ROLE, tt.ids, "", tt.role)
			wantCode(t, err, tt.code)
		})
	}

	if _, err := e.manage(owner, g, common.GroupAction_DISMISS, nil, "", 0); err != nil {
		t.Fatal(err)
	}
	for _, action := range []common.GroupAction{common.GroupAction_ADD,
		common.GroupAction_REMOVE, common.GroupAction_RENAME,
		common.GroupAction_SET_ROLE, common.GroupAction_DISMISS} {
		_, err := e.manage(owner, g, action, []int64{mem}, "n", common.GroupRole_ADMIN)
		wantCode(t, err, forb)
	}
}

// A dismissed group takes nothing new, typing included: TYPING there is
// refused as SEND is, and nobody is told.
func TestTyping_RefusedInADismissedGroup(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, mem := e.register(t, "owner"), e.register(t, "mem")
	g := e.group(t, owner, "G", mem)
	if _, err := e.manage(owner, g, common.GroupAction_DISMISS, nil, "", 0); err != nil {
		t.Fatal(err)
	}
	sub := e.subscribe(t, e.names.NotifySubject())
	for _, user := range []int64{owner, mem} {
		_, err := e.svc.Typing(ctxBG, session(user, 2), typingReq(g, true))
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	}
	noMore(t, e, sub)
}

// A dismissed group stays in its members' lists until they LEAVE it: that
// one change is still taken, from the owner too (there is no group left to
// hand over), and the leaver's list then shows it left. Every other change
// stays refused (TestGroup_NoClimbingAndNothingAfterDismiss).
func TestGroup_LeaveADismissedGroup(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, mem := e.register(t, "owner"), e.register(t, "mem")
	g := e.group(t, owner, "G", mem)
	if _, err := e.manage(owner, g, common.GroupAction_DISMISS, nil, "", 0); err != nil {
		t.Fatal(err) // seq 2
	}
	for i, user := range []int64{mem, owner} {
		resp, err := e.manage(user, g, common.GroupAction_LEAVE, nil, "", 0)
		wantCode(t, err, common.ErrorCode_OK)
		if want := int64(3 + i); resp.Seq != want {
			t.Fatalf("user %d's leave stored at seq %d, want %d", user, resp.Seq, want)
		}
		convs := e.syncConvs(t, session(user, 1), "", 50).Convs
		if len(convs) != 1 || !convs[0].Left || convs[0].LastSeq != resp.Seq {
			t.Fatalf("user %d's list after leaving = %+v, want %s left at seq %d", user,
				convs, g, resp.Seq)
		}
		_, err = e.manage(user, g, common.GroupAction_LEAVE, nil, "", 0)
		wantCode(t, err, common.ErrorCode_FORBIDDEN) // left already
	}
}

// An ADD that names members along with newcomers adds the newcomers and
// passes over the members: its event names only those it added. Only an
// ADD that leaves nobody to add is BAD_REQUEST.
func TestGroup_AddSkipsMembersAlreadyIn(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, mem, ann := e.register(t, "owner"), e.register(t, "mem"), e.register(t, "ann")
	g := e.group(t, owner, "G", mem)
	resp, err := e.manage(owner, g, common.GroupAction_ADD, []int64{mem, ann}, "", 0)
	wantCode(t, err, common.ErrorCode_OK)
	msgs := e.syncAll(t, owner, g)
	if ev := decodeGroupEvent(t, msgs[len(msgs)-1]); msgs[len(msgs)-1].Seq != resp.Seq ||
		!slices.Equal(ev.Targets, []int64{ann}) {
		t.Fatalf("last event %+v at seq %d, want the ADD of [%d] at %d", ev,
			msgs[len(msgs)-1].Seq, ann, resp.Seq)
	}
	_, err = e.manage(owner, g, common.GroupAction_ADD, []int64{mem, ann}, "", 0)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
}

// The length of a user list is checked as sent, before duplicates are
// dropped, so that a caller of the RPC (which the frame limit does not
// bound) cannot make the server sort a list of any length: a long list of
// one id repeated is TOO_LARGE, not read down to one user.
func TestGroupLists_LengthCheckedBeforeDeduplication(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, mem := e.register(t, "owner"), e.register(t, "mem")
	g := e.group(t, owner, "G", mem)
	repeat := func(id int64, n int) []int64 {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = id
		}
		return ids
	}
	_, err := e.svc.CreateGroup(ctxBG, session(owner, 1), &protocol.CreateGroupReq{
		ClientMsgId: "big", Name: "Big", MemberIds: repeat(mem, e.svc.cfg.MaxGroupMembers+1)})
	wantCode(t, err, common.ErrorCode_TOO_LARGE)
	// Naming only oneself is BAD_REQUEST; said 101 times, the length is
	// what is refused.
	_, err = e.manage(owner, g, common.GroupAction_REMOVE, repeat(owner, maxGroupTargets+1), "", 0)
	wantCode(t, err, common.ErrorCode_TOO_LARGE)
}

// A SYNC without a request reads as an empty one, as every handler's does,
// and its refusal is logged with the user who asked.
func TestSync_MissingRequestLogsTheUser(t *testing.T) {
	logs := &syncbuf.Buffer{}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	alice := e.register(t, "alice")
	_, err := e.svc.Sync(ctxBG, session(alice, 1), nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	if got := failLine(t, logs, "sync"); got["user"] != float64(alice) {
		t.Fatalf("sync refusal logged user=%v, want %d (line %v)", got["user"], alice, got)
	}
}

// A user who blocked someone cannot be put in a group by them, by
// CREATE_GROUP or ADD, and so be written to there: FORBIDDEN, and nothing
// stored. The block is one-way here: the blocker may add the blocked user,
// and anyone else may add the blocker. A member already in who blocked
// the adder is passed over as any member already in.
func TestGroup_NoAddByABlockedUser(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner, adm, bob, carol := e.register(t, "owner"), e.register(t, "adm"), e.register(t, "bob"),
		e.register(t, "carol")
	g := e.group(t, owner, "G", adm)
	if _, err := e.manage(owner, g, common.GroupAction_SET_ROLE, []int64{adm}, "",
		common.GroupRole_ADMIN); err != nil {
		t.Fatal(err)
	}
	for blocker, blocked := range map[int64]int64{bob: adm, carol: owner} {
		_, err := e.svc.Block(ctxBG, session(blocker, 1),
			&protocol.BlockReq{UserId: blocked, Blocked: true})
		wantCode(t, err, common.ErrorCode_OK)
	}
	before := e.countMessages(t)
	_, err := e.svc.CreateGroup(ctxBG, session(adm, 1), &protocol.CreateGroupReq{
		ClientMsgId: "c-bob", Name: "H", MemberIds: []int64{owner, bob}})
	wantCode(t, err, common.ErrorCode_FORBIDDEN)
	_, err = e.manage(adm, g, common.GroupAction_ADD, []int64{bob}, "", 0)
	wantCode(t, err, common.ErrorCode_FORBIDDEN)
	_, err = e.manage(owner, g, common.GroupAction_ADD, []int64{carol}, "", 0)
	wantCode(t, err, common.ErrorCode_FORBIDDEN)
	if n := e.countMessages(t); n != before {
		t.Fatalf("%d messages after the refused adds, want %d", n, before)
	}

	// The owner, whom bob did not block, adds him; then adm adds carol
	// along with bob, who is passed over.
	_, err = e.manage(owner, g, common.GroupAction_ADD, []int64{bob}, "", 0)
	wantCode(t, err, common.ErrorCode_OK)
	_, err = e.manage(adm, g, common.GroupAction_ADD, []int64{bob, carol}, "", 0)
	wantCode(t, err, common.ErrorCode_OK)
	// The blocker puts the user it blocked in a group of its own.
	_, err = e.svc.CreateGroup(ctxBG, session(bob, 1), &protocol.CreateGroupReq{
		ClientMsgId: "c-adm", Name: "I", MemberIds: []int64{adm}})
	wantCode(t, err, common.ErrorCode_OK)
}
