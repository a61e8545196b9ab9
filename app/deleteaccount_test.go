package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the store to see the dismissed group

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestDeleteAccount_EndToEnd deletes an account over real sockets: both of
// its devices are closed with ACCOUNT_DELETED, its password logs in no
// more, its name registers again as a new user, its peer still reads their
// conversation and sees it deleted, the group it owned with others passes
// to the admin, and the one it was alone in is dismissed.
func TestDeleteAccount_EndToEnd(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.DBDSN = filepath.Join(cfg.DataDir, "resonance.db")
	addr := startSystem(t, cfg).GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	phone := login(t, addr, fmt.Sprintf("dora%d", suffix), "phone", true)
	laptop := login(t, addr, phone.name, "laptop", false)
	bob := login(t, addr, fmt.Sprintf("bob%d", suffix), "phone", true)
	carol := login(t, addr, fmt.Sprintf("carol%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hi, err := phone.Send(ctx, client.SendParams{ToUserID: bob.id, Text: "hi bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, client.SendParams{ToUserID: phone.id, Text: "hi dora"}); err != nil {
		t.Fatal(err)
	}
	g, err := phone.CreateGroup(ctx, "G", []int64{bob.id, carol.id}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = phone.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g.ConvId,
		Action: common.GroupAction_SET_ROLE, UserIds: []int64{carol.id},
		Role: common.GroupRole_ADMIN})
	if err != nil {
		t.Fatal(err)
	}

	solo, err := phone.CreateGroup(ctx, "Solo", nil, "")
	if err != nil {
		t.Fatal(err)
	}

	if err := phone.DeleteAccount(ctx, "not the password"); client.CodeOf(err) !=
		common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("DeleteAccount with a wrong password = %v", err)
	}
	if err := phone.DeleteAccount(ctx, "correct horse"); err != nil {
		t.Fatalf("DeleteAccount = %v", err)
	}
	for _, u := range []*user{phone, laptop} {
		select {
		case <-u.Done():
		case <-ctx.Done():
			t.Fatalf("%s still connected after the deletion", u.name)
		}
		ce, ok := errors.AsType[*client.CloseError](u.Err())
		if !ok || ce.Reason != protocol.CloseReason_ACCOUNT_DELETED || ce.ShouldReconnect() {
			t.Fatalf("a device closed with %v, want CLOSE ACCOUNT_DELETED", u.Err())
		}
	}

	_, c := dialFor(t, addr)
	_, err = c.Login(ctx, client.LoginParams{Username: phone.name, Password: "correct horse"})
	if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("login of the deleted account = %v, want INVALID_CREDENTIALS", err)
	}
	again := login(t, addr, phone.name, "phone", true)
	if again.id == phone.id {
		t.Fatalf("the name registered again got the deleted id %d", again.id)
	}

	hist, err := bob.Sync(ctx, hi.ConvId, 0, 10)
	if err != nil || len(hist.Messages) != 2 || hist.Messages[0].SenderId != phone.id {
		t.Fatalf("bob's history with the deleted user = %+v, %v", hist, err)
	}
	who, err := bob.GetUserByID(ctx, phone.id)
	if err != nil || !who.Deleted || who.Username != "" {
		t.Fatalf("GET_USER of the deleted id = %+v, %v", who, err)
	}
	_, err = bob.Send(ctx, client.SendParams{ToUserID: phone.id, Text: "are you there?"})
	if client.CodeOf(err) != common.ErrorCode_FORBIDDEN {
		t.Fatalf("send to the deleted user = %v, want FORBIDDEN", err)
	}

	info, err := carol.GetGroup(ctx, g.ConvId)
	if err != nil {
		t.Fatal(err)
	}
	if info.OwnerId != carol.id || len(info.Members) != 2 {
		t.Fatalf("group after the owner's deletion = %+v, want carol owning it with bob", info)
	}

	// No one is left to ask about the lone group: the store says.
	db, err := sql.Open("sqlite", "file:"+cfg.Logic.DBDSN+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dismissed bool
	var active int
	err = db.QueryRowContext(ctx, "SELECT c.dismissed, (SELECT COUNT(*) FROM conv_members m "+
		"WHERE m.conv_id = c.id AND m.left_seq = 0) FROM conversations c WHERE c.id = ?",
		solo.ConvId).Scan(&dismissed, &active)
	if err != nil || !dismissed || active != 0 {
		t.Fatalf("the lone group: dismissed %t, %d members, %v; want dismissed and empty",
			dismissed, active, err)
	}
}

// TestChat_DeletedSenderOfOldMessagesAgainstTheRealSystem: a running
// terminal client shows the lines of a user who deleted the account as the
// deleted user's, also after a new user took the name; it learns it from
// the LEAVE the deletion sends in the user's groups.
func TestChat_DeletedSenderOfOldMessagesAgainstTheRealSystem(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	carol := login(t, addr, "dcarol", "phone", true)
	alice := runChat(t, addr, "dalice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	aliceID, err := carol.GetUser(ctx, "dalice")
	if err != nil {
		t.Fatal(err)
	}
	g, err := carol.CreateGroup(ctx, "Lunch", []int64{aliceID.UserId}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Send(ctx, client.SendParams{ConvID: g.ConvId, Text: "old hello"}); err != nil {
		t.Fatal(err)
	}
	alice.say(t, "/group Lunch")
	alice.wait(t, "dcarol #2: old hello")

	if err := carol.DeleteAccount(ctx, "correct horse"); err != nil {
		t.Fatal(err)
	}
	deleted := fmt.Sprintf("user#%d (deleted)", carol.id)
	// The deletion hands the group to alice (#3), then leaves it (#4).
	alice.wait(t, "* #4 "+deleted+" left")
	newCarol := login(t, addr, "dcarol", "phone", true)
	if _, err := newCarol.Send(ctx, client.SendParams{ToUserID: aliceID.UserId,
		Text: "new hello"}); err != nil {
		t.Fatal(err)
	}
	alice.wait(t, "dcarol #1: new hello")
	alice.say(t, "/group Lunch") // opened again: the old lines under the deleted name
	alice.wait(t, deleted+" #2: old hello")
	alice.wait(t, "* #3 "+deleted+" made dalice owner")
}
