package logic

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestConfig_ValidateRefusesNegativeSettings: zero takes the default, but a
// negative value is a mistake to report, not to replace by the default.
func TestConfig_ValidateRefusesNegativeSettings(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "token ttl", cfg: Config{TokenTTL: -time.Hour}, want: "TokenTTL -1h0m0s"},
		{name: "refresh ttl", cfg: Config{RefreshTTL: -1}, want: "RefreshTTL"},
		{name: "content", cfg: Config{MaxContent: -1}, want: "MaxContent -1"},
		{name: "group", cfg: Config{MaxGroupMembers: -5}, want: "MaxGroupMembers -5"},
		{name: "recall window", cfg: Config{RecallWindow: -time.Minute}, want: "RecallWindow"},
		{name: "edit window", cfg: Config{EditWindow: -time.Minute}, want: "EditWindow"},
		{name: "hash passes", cfg: Config{HashTime: -1}, want: "HashTime -1"},
		{name: "typing members", cfg: Config{Ephemeral: EphemeralConfig{TypingMaxMembers: -1}},
			want: "TypingMaxMembers -1"},
		{name: "limit burst", cfg: Config{LoginAddrLimit: ratelimit.Config{Burst: -1}},
			want: "LoginAddrLimit"},
		{name: "limit period", cfg: Config{RegisterAddrLimit: ratelimit.Config{Per: -time.Second}},
			want: "RegisterAddrLimit"},
		{name: "mysql without dsn", cfg: Config{DBDriver: DriverMySQL}, want: "DBDSN is required"},
		{name: "mysql dsn", cfg: Config{DBDriver: DriverMySQL, DBDSN: "root:secret@db:3306"},
			want: "DBDSN: invalid DSN"},
		{name: "mysql dsn without parsed times", cfg: Config{DBDriver: DriverMySQL,
			DBDSN: "root:secret@tcp(db:3306)/im?parseTime=false"}, want: "parseTime=false"},
		{name: "unknown driver", cfg: Config{DBDriver: "postgres"}, want: `"postgres"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.TokenSecret = "k"
			err := cfg.withDefaults().validate() // as New checks
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate = %v, want an error saying %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("validate = %v: the DSN's password is in the error", err)
			}
		})
	}
}

// TestConfig_ValidateLeavesOutTheTokenSecret: app validates before it
// generates the secret.
func TestConfig_ValidateLeavesOutTheTokenSecret(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("Validate of the zero Config = %v", err)
	}
	if err := (Config{MaxContent: -1}).Validate(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Validate with a negative MaxContent = %v, want ErrBadConfig", err)
	}
	if err := (Config{}).withDefaults().validate(); !errors.Is(err, ErrNoTokenSecret) {
		t.Fatalf("validate without a token secret = %v, want ErrNoTokenSecret", err)
	}
}

// TestMaxMessageBody_IsTheLargestMessage: a SEND with every id at its
// longest, a reply, the most mentions and the content at its limit is
// exactly MaxMessageBody long.
func TestMaxMessageBody_IsTheLargestMessage(t *testing.T) {
	for _, content := range []int{1, 100, DefaultMaxContent} {
		send := &protocol.SendReq{ClientMsgId: strings.Repeat("c", maxClientMsgID),
			ToUserId: math.MaxInt64, ConvId: strings.Repeat("v", maxConvID),
			ContentType: common.ContentType_BINARY, Content: make([]byte, content),
			ReplyToSeq: new(int64(math.MaxInt64)), MentionAll: new(true),
			Mentions: slices.Repeat([]int64{math.MaxInt64}, maxMentions)}
		edit := &protocol.EditReq{ClientMsgId: send.ClientMsgId, ConvId: send.ConvId,
			Seq: math.MaxInt64, ContentType: send.ContentType, Content: send.Content}
		got := MaxMessageBody(content)
		if send.BLength() != got || edit.BLength() > got {
			t.Errorf("MaxMessageBody(%d) = %d; SEND is %d, EDIT %d bytes", content, got,
				send.BLength(), edit.BLength())
		}
	}
	if MaxMessageBody(0) != MaxMessageBody(DefaultMaxContent) {
		t.Errorf("MaxMessageBody(0) = %d, want the default content's %d", MaxMessageBody(0),
			MaxMessageBody(DefaultMaxContent))
	}
}

// A content limit under the largest file description (a FILE message's
// content, without a caption) let a file upload and then refused its
// message: with --max-content 50 a new-user trial's 1500-byte file was
// stored and its FILE message answered TOO_LARGE.
func TestConfig_ContentHoldsAFileDescription(t *testing.T) {
	most := MaxFileRefBytes()
	err := Config{MaxContent: most - 1}.Validate()
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "MaxContent") {
		t.Fatalf("Validate with MaxContent %d = %v, want ErrBadConfig naming MaxContent",
			most-1, err)
	}
	if err := (Config{MaxContent: most}).Validate(); err != nil {
		t.Fatalf("Validate with MaxContent %d = %v", most, err)
	}
	if most < 400 || most > 1000 {
		t.Fatalf("MaxFileRefBytes() = %d, want the size of a file id, a 255-byte name, "+
			"a 127-byte type and a hash", most)
	}
}
