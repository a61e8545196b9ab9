package logic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// suspendedConns returns the connections kicked with ACCOUNT_SUSPENDED.
func (e *env) suspendedConns(t *testing.T) []int64 {
	t.Helper()
	var conns []int64
	for _, k := range e.kickEvents(t) {
		if k.Reason == protocol.CloseReason_ACCOUNT_SUSPENDED {
			conns = append(conns, k.ConnId)
		}
	}
	slices.Sort(conns)
	return conns
}

// passwordLogin logs name in with password on a new connection and returns
// the outcome's code.
func (e *env) passwordLogin(name, password string) common.ErrorCode {
	_, err := e.svc.Login(context.Background(), &protocol.LoginReq{Username: name,
		Password: password, DeviceId: "desk"}, &logicrpc.ConnInfo{Gateway: "gw-2:9000",
		ConnId: 77})
	return codeOf(err)
}

func TestAdmin_SuspendRefusesLoginsAndClosesConns(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.register(t, "alice")
		bob := e.register(t, "bob")
		phone := e.loginDevice(t, "alice", "phone", 1)
		e.loginDevice(t, "alice", "laptop", 2)

		sum, _, err := e.svc.Suspend(ctx, "Alice", "spam")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Suspended.IsZero() || sum.SuspendReason != "spam" || sum.Devices != 0 {
			t.Fatalf("summary after suspend = %+v", sum)
		}
		if got := e.suspendedConns(t); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("closed with ACCOUNT_SUSPENDED: %v, want conns 1 and 2", got)
		}

		// Logins are refused as suspended, but only to whoever proves the
		// password or holds a token the server signed.
		if c := e.passwordLogin("alice", testPassword); c != common.ErrorCode_ACCOUNT_SUSPENDED {
			t.Fatalf("password login = %s", c)
		}
		wrong := e.passwordLogin("alice", "wrong password")
		if wrong != common.ErrorCode_INVALID_CREDENTIALS {
			t.Fatalf("wrong password login = %s", wrong)
		}
		if c := e.tokenLogin(t, phone.token); c != common.ErrorCode_ACCOUNT_SUSPENDED {
			t.Fatalf("token login = %s", c)
		}
		// A connection whose close is late can neither send nor read.
		_, err = e.svc.Send(ctx, phone.sess, textReq("s1", bob))
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		_, err = e.svc.GetUser(ctx, phone.sess, &protocol.GetUserReq{UserId: bob})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		// The name stays taken.
		_, err = e.svc.Register(ctx, &protocol.RegisterReq{Username: "alice",
			Password: testPassword}, testConn)
		wantCode(t, err, common.ErrorCode_USERNAME_TAKEN)

		sum, _, err = e.svc.Unsuspend(ctx, "alice")
		if err != nil || !sum.Suspended.IsZero() || sum.SuspendReason != "" {
			t.Fatalf("unsuspend = %+v, %v", sum, err)
		}
		if c := e.passwordLogin("alice", testPassword); c != common.ErrorCode_OK {
			t.Fatalf("password login after unsuspend = %s", c)
		}
	})
}

// Suspend and Unsuspend report whether they changed anything, so that the
// operator is told a repeat or an unsuspend of an account in good standing
// did nothing.
func TestAdmin_SuspendAndUnsuspendReportWhatChanged(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.register(t, "alice")
		steps := []struct {
			name string
			act  func() (UserSummary, bool, error)
			want bool
		}{
			{"unsuspend in good standing", func() (UserSummary, bool, error) {
				return e.svc.Unsuspend(ctx, "alice")
			}, false},
			{"suspend", func() (UserSummary, bool, error) {
				return e.svc.Suspend(ctx, "alice", "spam")
			}, true},
			{"suspend again", func() (UserSummary, bool, error) {
				return e.svc.Suspend(ctx, "alice", "spam")
			}, false},
			{"new reason", func() (UserSummary, bool, error) {
				return e.svc.Suspend(ctx, "alice", "abuse")
			}, true},
			{"unsuspend", func() (UserSummary, bool, error) {
				return e.svc.Unsuspend(ctx, "alice")
			}, true},
			{"unsuspend again", func() (UserSummary, bool, error) {
				return e.svc.Unsuspend(ctx, "alice")
			}, false},
		}
		for _, st := range steps {
			if _, changed, err := st.act(); err != nil || changed != st.want {
				t.Fatalf("%s: changed %v, %v; want %v", st.name, changed, err, st.want)
			}
		}
	})
}

func TestAdmin_ResetPasswordSignsOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.register(t, "alice")
		phone := e.loginDevice(t, "alice", "phone", 1)

		_, password, err := e.svc.ResetPassword(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(password) < 20 || validNewPassword("alice", password) != nil {
			t.Fatalf("new password %q is no good password", password)
		}
		if got := e.signedOut(t); !slices.Equal(got, []int64{1}) {
			t.Fatalf("closed with SIGNED_OUT: %v, want conn 1", got)
		}
		if c := e.tokenLogin(t, phone.token); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("old token login = %s", c)
		}
		if c := e.passwordLogin("alice", testPassword); c != common.ErrorCode_INVALID_CREDENTIALS {
			t.Fatalf("old password login = %s", c)
		}
		if c := e.passwordLogin("alice", password); c != common.ErrorCode_OK {
			t.Fatalf("new password login = %s", c)
		}
	})
}

func TestAdmin_SignOutAll(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.register(t, "alice")
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		if sum, err := e.svc.AdminUser(ctx, "alice"); err != nil || sum.Devices != 2 {
			t.Fatalf("summary = %+v, %v; want 2 devices", sum, err)
		}

		sum, n, err := e.svc.SignOutAll(ctx, "alice")
		if err != nil || n != 2 || sum.Devices != 0 {
			t.Fatalf("SignOutAll = %+v, %d, %v; want 2 devices signed out", sum, n, err)
		}
		got := e.signedOut(t)
		slices.Sort(got) // the kicks go out in the routes' order, which is a map's
		if !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("closed with SIGNED_OUT: %v, want conns 1 and 2", got)
		}
		for _, tok := range []string{phone.token, laptop.token, laptop.refresh} {
			if c := e.tokenLogin(t, tok); c != common.ErrorCode_TOKEN_INVALID {
				t.Fatalf("token login after sign-out = %s", c)
			}
		}
		if sum, err := e.svc.AdminUser(ctx, "alice"); err != nil || sum.Devices != 0 {
			t.Fatalf("summary = %+v, %v; want no device", sum, err)
		}
		if c := e.passwordLogin("alice", testPassword); c != common.ErrorCode_OK {
			t.Fatalf("password login after sign-out = %s", c)
		}
	})
}

func TestAdmin_UnknownOrDeletedUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) { unknownOrDeletedUser(t, e) })
}

func unknownOrDeletedUser(t *testing.T, e *env) {
	ctx := context.Background()
	e.register(t, "gone")
	gone := e.loginDevice(t, "gone", "phone", 1)
	if err := e.deleteAccount(gone.sess, testPassword); err != nil {
		t.Fatal(err)
	}
	actions := map[string]func(name string) error{
		"show":    func(n string) error { _, err := e.svc.AdminUser(ctx, n); return err },
		"suspend": func(n string) error { _, _, err := e.svc.Suspend(ctx, n, "x"); return err },
		"unsuspend": func(n string) error {
			_, _, err := e.svc.Unsuspend(ctx, n)
			return err
		},
		"reset":    func(n string) error { _, _, err := e.svc.ResetPassword(ctx, n); return err },
		"sign-out": func(n string) error { _, _, err := e.svc.SignOutAll(ctx, n); return err },
	}
	for what, act := range actions {
		for _, c := range []struct {
			name string
			want error
		}{
			{name: "nobody", want: ErrNotFound},
			{name: "gone", want: ErrNotFound},
			{name: "x", want: ErrBadRequest},
		} {
			if err := act(c.name); !errors.Is(err, c.want) {
				t.Errorf("%s %q = %v, want %v", what, c.name, err, c.want)
			}
		}
	}
}

// A deleted account's name is released, so the operator finds it by its
// id, "#ID" (the id the logs and its messages name): shown as deleted, and
// left alone by every action. A live account is reached by id too.
func TestAdmin_FindsAccountsByID(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		goneID := e.register(t, "gone")
		liveID := e.register(t, "live")
		gone := e.loginDevice(t, "gone", "phone", 1)
		if err := e.deleteAccount(gone.sess, testPassword); err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("#%d", goneID)
		sum, err := e.svc.AdminUser(ctx, ref)
		if err != nil || sum.ID != goneID || sum.Deleted.IsZero() || sum.Devices != 0 {
			t.Fatalf("AdminUser(%q) = %+v, %v; want the account, deleted", ref, sum, err)
		}
		if _, _, err := e.svc.Suspend(ctx, ref, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Suspend(%q) = %v, want %v", ref, err, ErrNotFound)
		}
		live := fmt.Sprintf("#%d", liveID)
		if sum, err := e.svc.AdminUser(ctx, live); err != nil || sum.Username != "live" ||
			!sum.Deleted.IsZero() {
			t.Fatalf("AdminUser(%q) = %+v, %v; want live", live, sum, err)
		}
		for _, bad := range []string{"#", "#0", "#-1", "#x1", "#1 "} {
			if _, err := e.svc.AdminUser(ctx, bad); !errors.Is(err, ErrBadRequest) {
				t.Errorf("AdminUser(%q) = %v, want %v", bad, err, ErrBadRequest)
			}
		}
		if _, err := e.svc.AdminUser(ctx, "#999999"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminUser(#999999) = %v, want %v", err, ErrNotFound)
		}
	})
}

// A 404 by name hints at "#ID", where a deleted account is found; one by
// id does not point the operator back at what was just tried.
func TestAdmin_NotFoundHintsAtIDForNamesOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, byName := e.svc.AdminUser(ctx, "nobody")
		_, byID := e.svc.AdminUser(ctx, "#999999")
		if !strings.Contains(fmt.Sprint(byName), "#ID") ||
			strings.Contains(fmt.Sprint(byID), "#ID") {
			t.Fatalf("by name: %v; by id: %v; want the hint by name only", byName, byID)
		}
	})
}
