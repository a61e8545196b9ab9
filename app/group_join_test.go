package app

import (
	"context"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// groupScene is a group of an owner's with history, and a user not in it
// yet whose sessions the tests open.
type groupScene struct {
	ctx   context.Context
	addr  string
	owner *user
	late  *user
	g     string
}

// newGroupScene creates the group and stores seqs 2 to 4 in it.
func newGroupScene(t *testing.T, addr string) *groupScene {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	tag := client.NewClientMsgID()[:6]
	sc := &groupScene{ctx: ctx, addr: addr,
		owner: login(t, addr, "jown"+tag, "phone", true),
		late:  login(t, addr, "jlat"+tag, "phone", true)}
	created, err := sc.owner.Client.CreateGroup(ctx, "Joins", nil, "")
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	sc.g = created.ConvId
	sc.say(t, 3)
	return sc
}

// say stores n messages of the owner's in the group.
func (sc *groupScene) say(t *testing.T, n int) {
	t.Helper()
	for range n {
		if _, err := sc.owner.Client.Send(sc.ctx, client.SendParams{ConvID: sc.g,
			Text: "owner"}); err != nil {
			t.Fatal(err)
		}
	}
}

// change adds or removes the late user.
func (sc *groupScene) change(t *testing.T, action common.GroupAction) {
	t.Helper()
	if _, err := sc.owner.Client.ManageGroup(sc.ctx, &protocol.ManageGroupReq{ConvId: sc.g,
		Action: action, UserIds: []int64{sc.late.id}}); err != nil {
		t.Fatalf("%v: %v", action, err)
	}
}

// open opens a session of the late user's device and collects it.
func (sc *groupScene) open(t *testing.T, device string,
	cfg client.SessionConfig) (*client.Session, *stream) {
	t.Helper()
	cfg.Addr = sc.addr
	cfg.Login = client.LoginParams{Username: sc.late.name, Password: "correct horse",
		DeviceID: device}
	s, err := client.OpenSession(sc.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, collect(t, s)
}

// A member added, removed and added again reads each membership from the
// event that began it, on every device, whatever its start: the removal
// event is theirs, what came while they were out is not.
func TestSession_GroupJoinedLeftAndJoinedAgain(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	sc := newGroupScene(t, sys.GatewayAddr().String())
	_, first := sc.open(t, "tablet", client.SessionConfig{})
	_, latest := sc.open(t, "laptop", client.SessionConfig{StartAtLatest: true})
	_, paged := sc.open(t, "watch", client.SessionConfig{StartAtLatest: true, SyncPage: 2})
	devices := map[string]*stream{"tablet": first, "laptop": latest, "watch": paged}

	sc.change(t, common.GroupAction_ADD) // 5
	sc.say(t, 4)                         // 6 to 9
	sc.change(t, common.GroupAction_REMOVE)
	for device, st := range devices {
		st.waitSeqs(t, device, sc.g, seqRange(5, 10))
	}
	sc.say(t, 1)                         // 11
	sc.change(t, common.GroupAction_ADD) // 12
	sc.say(t, 1)                         // 13
	for device, st := range devices {
		st.waitSeqs(t, device, sc.g, append(seqRange(5, 10), 12, 13))
	}
}

// A device away while its user was added to the group again continues,
// in its next process, from the new membership: from the app's persisted
// positions, or from the server's for the device.
func TestSession_GroupJoinedAgainWhileAway(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	for _, tt := range []struct {
		name              string
		latest, persisted bool
	}{
		{name: "from the first, persisted", persisted: true},
		{name: "from the first, server's position"},
		{name: "at the latest, persisted", latest: true, persisted: true},
		{name: "at the latest, server's position", latest: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := newGroupScene(t, sys.GatewayAddr().String())
			store := client.NewMemoryPositions()
			cfg := func() client.SessionConfig {
				if !tt.persisted {
					store = client.NewMemoryPositions()
				}
				return client.SessionConfig{StartAtLatest: tt.latest, Positions: store}
			}
			sess, before := sc.open(t, "tablet", cfg())
			sc.change(t, common.GroupAction_ADD) // 5
			sc.say(t, 1)                         // 6
			sc.change(t, common.GroupAction_REMOVE)
			before.waitSeqs(t, "tablet", sc.g, []int64{5, 6, 7})
			_ = sess.Close()

			sc.say(t, 1)                         // 8
			sc.change(t, common.GroupAction_ADD) // 9
			sc.say(t, 1)                         // 10
			_, after := sc.open(t, "tablet", cfg())
			after.waitSeqs(t, "tablet", sc.g, []int64{9, 10})
		})
	}
}

// A server restart between a late join and what follows it costs no
// device a message nor hands one over twice, whatever its start.
func TestSession_GroupJoinedLateAcrossAServerRestart(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	sc := newGroupScene(t, addr)
	_, first := sc.open(t, "tablet", client.SessionConfig{})
	_, latest := sc.open(t, "laptop", client.SessionConfig{StartAtLatest: true})
	devices := map[string]*stream{"tablet": first, "laptop": latest}
	sc.change(t, common.GroupAction_ADD) // 5
	sc.say(t, 1)                         // 6
	for device, st := range devices {
		st.waitSeqs(t, device, sc.g, []int64{5, 6})
	}

	sys.Stop()
	cfg.Gateway.Addr = addr // where the sessions reconnect
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	again, err := Start(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(again.Stop)
	sc.owner = login(t, addr, sc.owner.name, "phone", false)
	sc.say(t, 2) // 7, 8
	for device, st := range devices {
		st.waitSeqs(t, device, sc.g, seqRange(5, 8))
	}
}
