package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// outcomeCase is one request of Client, made by call on alice's
// connection c, whose answer a test loses.
type outcomeCase struct {
	name string
	op   protocol.Op
	call func(ctx context.Context, c *client.Client, o outcomeFixture) error
	// unknown: a lost answer must say ErrOutcomeUnknown; the requests safe
	// to repeat say nothing of it (see their doc comments).
	unknown bool
}

// outcomeFixture is what the cases act on: a group alice owns, with bob.
type outcomeFixture struct {
	bobID int64
	group string
	login *protocol.LoginResp
}

func outcomeCases() []outcomeCase {
	return []outcomeCase{
		{name: "register", op: protocol.Op_REGISTER, unknown: true,
			call: func(ctx context.Context, c *client.Client, _ outcomeFixture) error {
				_, err := c.Register(ctx, "carol", passwordOf("carol"))
				return err
			}},
		{name: "logout", op: protocol.Op_LOGOUT, unknown: true,
			call: func(ctx context.Context, c *client.Client, _ outcomeFixture) error {
				return c.Logout(ctx)
			}},
		{name: "refresh", op: protocol.Op_REFRESH, unknown: true,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				_, err := c.Refresh(ctx, o.login.RefreshToken)
				return err
			}},
		{name: "create group", op: protocol.Op_CREATE_GROUP, unknown: true,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				_, err := c.CreateGroup(ctx, "second", []int64{o.bobID}, "")
				return err
			}},
		{name: "manage group", op: protocol.Op_MANAGE_GROUP, unknown: true,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				_, err := c.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: o.group,
					Action: common.GroupAction_SET_ROLE, Role: common.GroupRole_OWNER,
					UserIds: []int64{o.bobID}})
				return err
			}},
		{name: "recall", op: protocol.Op_RECALL, unknown: true,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				_, err := c.Recall(ctx, o.group, 1, "")
				return err
			}},
		{name: "edit", op: protocol.Op_EDIT, unknown: true,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				_, err := c.Edit(ctx, o.group, 1, "edited", "")
				return err
			}},
		{name: "block", op: protocol.Op_BLOCK,
			call: func(ctx context.Context, c *client.Client, o outcomeFixture) error {
				return c.Block(ctx, o.bobID, true)
			}},
		{name: "sign out device", op: protocol.Op_SIGN_OUT_DEVICE,
			call: func(ctx context.Context, c *client.Client, _ outcomeFixture) error {
				return c.SignOutDevice(ctx, "dev-alice")
			}},
	}
}

// The requests not safe to repeat blindly say, when their answer is lost
// after they were sent (whether the server acted or not), that the outcome
// is unknown; those safe to repeat do not.
func TestClient_RequestsSayWhenTheirOutcomeIsUnknown(t *testing.T) {
	ctx := context.Background()
	for _, tc := range outcomeCases() {
		for _, lose := range []struct {
			name string
			lose func(*clienttest.Server, protocol.Op, int)
		}{
			{name: "reply lost", lose: (*clienttest.Server).LoseReplies},
			{name: "request lost", lose: (*clienttest.Server).LoseRequests},
		} {
			t.Run(tc.name+"/"+lose.name, func(t *testing.T) {
				s := startServer(t, clienttest.Options{})
				loginNew(t, s, "alice", client.Options{})
				_, bobID := loginNew(t, s, "bob", client.Options{})
				c, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
				if err != nil {
					t.Fatal(err)
				}
				g, err := c.CreateGroup(ctx, "first", []int64{bobID}, "")
				if err != nil {
					t.Fatal(err)
				}
				o := outcomeFixture{bobID: bobID, group: g.ConvId, login: login}

				lose.lose(s, tc.op, 1)
				err = tc.call(ctx, c, o)
				if err == nil {
					t.Fatal("the call succeeded")
				}
				if got := errors.Is(err, client.ErrOutcomeUnknown); got != tc.unknown {
					t.Errorf("error = %v: outcome unknown %t, want %t", err, got, tc.unknown)
				}
				if strings.Count(err.Error(), "client:") != 1 {
					t.Errorf("error = %q, want \"client:\" once", err)
				}
			})
		}
	}
}

// A refusal and a request not sent are known outcomes.
func TestClient_RefusedOrUnsentOutcomeIsKnown(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, clienttest.Options{})
	c, _ := loginNew(t, s, "alice", client.Options{})
	_, err := c.CreateGroup(ctx, "", nil, "")
	if errors.Is(err, client.ErrOutcomeUnknown) || client.CodeOf(err) != common.ErrorCode_BAD_REQUEST {
		t.Fatalf("CreateGroup with no name = %v, want BAD_REQUEST alone", err)
	}
	_ = c.Close()
	_, err = c.CreateGroup(ctx, "g", nil, "")
	if errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, client.ErrClosed) {
		t.Fatalf("CreateGroup on a closed client = %v, want ErrClosed alone", err)
	}
}

// CreateGroup called again with the client msg id of one whose answer was
// lost returns the group it made, as the doc comment says: one group.
func TestClient_CreateGroupRetrySettlesALostAnswer(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	c, _, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	s.LoseReplies(protocol.Op_CREATE_GROUP, 1)
	_, err = c.CreateGroup(ctx, "g", []int64{bobID}, "create-1")
	if !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("CreateGroup = %v, want ErrOutcomeUnknown", err)
	}
	c2, _, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := c2.CreateGroup(ctx, "g", []int64{bobID}, "create-1")
	if err != nil {
		t.Fatalf("CreateGroup again = %v", err)
	}
	second, err := c2.CreateGroup(ctx, "g", []int64{bobID}, "create-2")
	if err != nil {
		t.Fatal(err)
	}
	if first.ConvId != "g:1" || second.ConvId != "g:2" {
		t.Fatalf("groups %q then %q, want the retry to return g:1, the lost one", first.ConvId,
			second.ConvId)
	}
}
