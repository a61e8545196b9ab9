package logic

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/tokengen"
)

func TestTokenSigner(t *testing.T) {
	ts := tokenSigner{secret: []byte("k"), ttl: time.Hour}
	now := time.UnixMilli(1_700_000_000_000)
	good, claims := ts.issue(tokenClaims{UserID: 42, DeviceID: "phone:1", Generation: 5}, now)
	cases := []struct {
		name    string
		token   string
		at      time.Time
		wantErr bool
	}{
		{name: "valid", token: good, at: now},
		{name: "just before expiry", token: good, at: claims.Expires.Add(-time.Millisecond)},
		{name: "at expiry", token: good, at: claims.Expires, wantErr: true},
		{name: "forged", token: flipLast(good), at: now, wantErr: true},
		{name: "no dot", token: strings.ReplaceAll(good, ".", ""), at: now, wantErr: true},
		{name: "payload swapped", token: swapPayload(t, ts, good), at: now, wantErr: true},
		{name: "empty", token: "", at: now, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ts.verify(tc.token, tc.at)
			if tc.wantErr {
				if err == nil {
					t.Fatal("verify accepted a bad token")
				}
				return
			}
			if err != nil || got.UserID != 42 || got.DeviceID != "phone:1" ||
				got.Generation != 5 || !got.Expires.Equal(claims.Expires) {
				t.Fatalf("claims = %+v, %v", got, err)
			}
		})
	}
}

// swapPayload keeps good's signature but puts another user's payload in front.
func swapPayload(t *testing.T, ts tokenSigner, good string) string {
	t.Helper()
	other, _ := ts.issue(tokenClaims{UserID: 43, DeviceID: "phone:1"},
		time.UnixMilli(1_700_000_000_000))
	return other[:strings.IndexByte(other, '.')] + good[strings.IndexByte(good, '.'):]
}

func TestHasher(t *testing.T) {
	h, err := newHasher(testArgon, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stored, err := h.hash(ctx, "secret password")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		password string
		stored   string
		want     bool
		wantErr  bool
	}{
		{name: "right", password: "secret password", stored: stored, want: true},
		{name: "wrong", password: "secret passwore", stored: stored},
		{name: "unknown user", password: "secret password", stored: ""},
		{name: "malformed hash", password: "x", stored: "$argon2id$v=19$bad", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.verify(ctx, tc.password, tc.stored)
			if (err != nil) != tc.wantErr || ok != tc.want {
				t.Fatalf("verify = %v, %v", ok, err)
			}
		})
	}
}

func TestHasher_QueueFullIsBusy(t *testing.T) {
	h, err := newHasher(testArgon, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.hash(ctx, "password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
}

func TestDefaultArgonIsArgon2id19MiB(t *testing.T) {
	h, err := newHasher(defaultArgon, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h.dummy, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded = %s", h.dummy)
	}
}

// The gateway reads the generation of the tokens logic issues with
// tokengen, which must agree with the signer's layout.
func TestTokenSigner_GenerationReadByGateway(t *testing.T) {
	ts := tokenSigner{secret: []byte("k"), ttl: time.Hour}
	tok, _ := ts.issue(tokenClaims{UserID: 42, DeviceID: "phone:1", Generation: 7}, time.Now())
	if got := tokengen.Generation(tok); got != 7 {
		t.Fatalf("tokengen.Generation = %d, want 7", got)
	}
}
