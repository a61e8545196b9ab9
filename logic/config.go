// Package logic owns the logic role: accounts, tokens, routes on login, and
// the message store. It serves the Kitex Logic service that gateways call,
// stores every message with a per-conversation seq, and publishes its
// MessageEvent to JetStream for task to deliver through a transactional
// outbox (outbox.go). It keeps conversation memberships with read
// positions, each device's delivered positions (positions.go), serves the
// conversation list (convs.go), and asks task to kick a connection replaced
// by a newer login (kick.go). Accounts carry a profile (profile.go) and a
// block list (block.go); each device a login has seen keeps a token
// generation and one rotating refresh token (devices.go, refresh.go), which
// logout, password change and device sign-out revoke (sessions.go).
// Password attempts, registrations and searches are rate-limited per
// instance (limits.go).
package logic

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Supported values of Config.DBDriver.
const (
	DriverSQLite = "sqlite"
	DriverMySQL  = "mysql"
)

// Config configures the logic role. A zero field means its default.
type Config struct {
	// DBDriver is DriverSQLite (default) or DriverMySQL.
	DBDriver string
	// DBDSN is, for SQLite, a file path (default "data/resonance.db"; its
	// directory is created); for MySQL, a go-sql-driver DSN, to which
	// parseTime=true is added if missing.
	DBDSN string
	// TablePrefix is prepended to every table name.
	TablePrefix string
	// TokenSecret is the HMAC-SHA256 key of login tokens. Required.
	TokenSecret string
	// TokenTTL is how long an issued access token stays valid; default 1h.
	// A connection whose token expires without a REFRESH is closed.
	TokenTTL time.Duration
	// RefreshTTL is how long a refresh token stays valid; default 30 days.
	RefreshTTL time.Duration
	// InternalSecret, when set, is required on every Kitex call to the
	// Logic service (see internal/rpcauth); gateways must send the same.
	InternalSecret string
	// LoginAccountLimit bounds password attempts per username (existing or
	// not) in this instance; default a burst of 10, then one per 30s.
	LoginAccountLimit ratelimit.Config
	// LoginAddrLimit bounds password attempts per client address in this
	// instance; default a burst of 30, then one per 2s.
	LoginAddrLimit ratelimit.Config
	// RegisterAddrLimit bounds Register calls per client address in this
	// instance, valid or not; default a burst of 30, then one per 10s.
	RegisterAddrLimit ratelimit.Config
	// SearchLimit bounds SearchUsers calls per user in this instance;
	// default a burst of 10, then one per 3s.
	SearchLimit ratelimit.Config
	// MaxContent is the largest message content in bytes; default 16 KiB.
	MaxContent int
	// MaxGroupMembers caps the active members of a group, owner included;
	// default 500.
	MaxGroupMembers int
	// RecallWindow is how long after sending a sender may recall a message;
	// default 2m.
	RecallWindow time.Duration
	// EditWindow is how long after sending a sender may edit a message;
	// default 24h.
	EditWindow time.Duration
	// HashConcurrency bounds the password hashes running at once (each takes
	// argon2 memory and a core); default runtime.NumCPU().
	HashConcurrency int
	// HashMemoryKiB is the argon2id memory of a new password hash in KiB,
	// from 8 to 4194304; default DefaultHashMemoryKiB (19 MiB). HashTime is
	// its number of passes, at most 1024; default DefaultHashTime. Below the
	// defaults they are for benchmarks and tests (New logs a warning). A
	// hash records its own cost, so changing them keeps old hashes
	// verifiable.
	HashMemoryKiB int
	HashTime      int
	// PublishTimeout bounds the wait for JetStream's acks of one batch of
	// outbox events, and of a kick event; default 5s. Sends never wait for
	// it: an event not acked in time stays in the outbox for the relay.
	PublishTimeout time.Duration
	// LoginBatchWait bounds how long a LoginBatch waits for its attempts,
	// and a Login for its one; default 3s. The gateway bounds the whole
	// call (its RequestTimeout, default 5s), so keep this below it: the
	// attempts done by then are answered, and one still running is
	// cancelled and answered UNAVAILABLE, instead of the gateway's timeout
	// failing all of them, and its route is removed if it logs in later.
	LoginBatchWait time.Duration
	// FileDir is the directory that keeps uploaded files' bytes. Empty
	// keeps them in the SQL database, in chunks (for logic instances that
	// share no disk); the all-in-one process on SQLite sets it beside the
	// database file. File descriptions are in SQL either way.
	FileDir string
	// MaxFileSize is the largest upload in bytes; default 25 MiB.
	MaxFileSize int64
	// MaxUploads caps one user's unfinished uploads; default 10.
	MaxUploads int
	// FileRetention is how long an unfinished upload, or a complete file no
	// message names, is kept before the pruner deletes it; default 24h.
	FileRetention time.Duration
	// UploadLimit bounds the uploads a user starts in this instance;
	// default a burst of 20, then one per 3s.
	UploadLimit ratelimit.Config
	// MessageSearchLimit bounds SearchMessages calls (pages included) per
	// user in this instance; default a burst of 20, then one per second.
	MessageSearchLimit ratelimit.Config
	// PinLimit bounds Pin calls (pins and unpins) per user in this
	// instance; default a burst of 20, then one per 3s.
	PinLimit ratelimit.Config
	// Ephemeral bounds typing and presence (see EphemeralConfig).
	Ephemeral EphemeralConfig
}

// DefaultMessageSearchBurst is MessageSearchLimit's default burst.
const DefaultMessageSearchBurst = 20

// Defaults of Config.
const (
	DefaultSQLitePath     = "data/resonance.db"
	DefaultTokenTTL       = time.Hour
	DefaultRefreshTTL     = 30 * 24 * time.Hour
	DefaultSearchBurst    = 10
	DefaultMaxContent     = 16 << 10
	DefaultPublishTimeout = 5 * time.Second
	DefaultLoginBatchWait = 3 * time.Second
	DefaultMaxGroup       = 500
	DefaultRecallWindow   = 2 * time.Minute
	DefaultEditWindow     = 24 * time.Hour
	DefaultHashMemoryKiB  = 19 * 1024
	DefaultHashTime       = 2
	DefaultMaxFileSize    = 25 << 20
	DefaultMaxUploads     = 10
	DefaultFileRetention  = 24 * time.Hour
)

// Bounds of Config.HashMemoryKiB and HashTime: argon2id needs 8 KiB per
// lane, and more than 4 GiB or 1024 passes per login is a typo.
const (
	minHashMemoryKiB = 8
	maxHashMemoryKiB = 4 << 20
	maxHashTime      = 1024
)

// withDefaults returns cfg with every zero field set to its default. A
// negative field stays, for validate to refuse: no negative size or time
// means anything here, and taking the default instead would hide the typo.
func (cfg Config) withDefaults() Config {
	if cfg.DBDriver == "" {
		cfg.DBDriver = DriverSQLite
	}
	if cfg.DBDSN == "" && cfg.DBDriver == DriverSQLite {
		cfg.DBDSN = DefaultSQLitePath
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	cfg.LoginAccountLimit = limitDefaults(cfg.LoginAccountLimit, 10, 30*time.Second)
	cfg.LoginAddrLimit = limitDefaults(cfg.LoginAddrLimit, 30, 2*time.Second)
	cfg.RegisterAddrLimit = limitDefaults(cfg.RegisterAddrLimit, 30, 10*time.Second)
	cfg.SearchLimit = limitDefaults(cfg.SearchLimit, DefaultSearchBurst, 3*time.Second)
	if cfg.MaxContent == 0 {
		cfg.MaxContent = DefaultMaxContent
	}
	if cfg.MaxGroupMembers == 0 {
		cfg.MaxGroupMembers = DefaultMaxGroup
	}
	if cfg.RecallWindow == 0 {
		cfg.RecallWindow = DefaultRecallWindow
	}
	if cfg.EditWindow == 0 {
		cfg.EditWindow = DefaultEditWindow
	}
	if cfg.HashConcurrency == 0 {
		cfg.HashConcurrency = runtime.NumCPU()
	}
	if cfg.HashMemoryKiB == 0 {
		cfg.HashMemoryKiB = DefaultHashMemoryKiB
	}
	if cfg.HashTime == 0 {
		cfg.HashTime = DefaultHashTime
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.LoginBatchWait == 0 {
		cfg.LoginBatchWait = DefaultLoginBatchWait
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.MaxUploads == 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.FileRetention == 0 {
		cfg.FileRetention = DefaultFileRetention
	}
	cfg.UploadLimit = limitDefaults(cfg.UploadLimit, 20, 3*time.Second)
	cfg.MessageSearchLimit = limitDefaults(cfg.MessageSearchLimit, DefaultMessageSearchBurst,
		time.Second)
	cfg.PinLimit = limitDefaults(cfg.PinLimit, 20, 3*time.Second)
	cfg.Ephemeral = cfg.Ephemeral.withDefaults()
	return cfg
}

// limitDefaults fills the zero fields of a limiter budget with burst and per.
func limitDefaults(c ratelimit.Config, burst int, per time.Duration) ratelimit.Config {
	if c.Burst == 0 {
		c.Burst = burst
	}
	if c.Per == 0 {
		c.Per = per
	}
	return c
}

// Validate reports a setting New would refuse, TokenSecret aside (a caller
// may generate it after validating the rest), without opening anything.
// Zero fields take their defaults first.
func (cfg Config) Validate() error {
	return cfg.withDefaults().validateSettings()
}

// validate reports a configuration New cannot run with; cfg has its
// defaults.
func (cfg Config) validate() error {
	if cfg.TokenSecret == "" {
		return ErrNoTokenSecret
	}
	return cfg.validateSettings()
}

func (cfg Config) validateSettings() error {
	if cfg.DBDriver != DriverSQLite && cfg.DBDriver != DriverMySQL {
		return fmt.Errorf("%w: %q", ErrUnknownDriver, cfg.DBDriver)
	}
	if cfg.DBDriver == DriverMySQL {
		if cfg.DBDSN == "" {
			return fmt.Errorf("%w: DBDSN is required with %s", ErrBadConfig, DriverMySQL)
		}
		// The error leaves the DSN out: it may hold a password.
		dsn, err := gomysql.ParseDSN(mysqlDSN(cfg.DBDSN))
		if err != nil {
			return fmt.Errorf("%w: DBDSN: %v", ErrBadConfig, err)
		}
		if !dsn.ParseTime {
			// Times would come back as bytes, and every send fails reading
			// its conversation's updated_at.
			return fmt.Errorf("%w: DBDSN: parseTime=false; leave it out or set it true",
				ErrBadConfig)
		}
	}
	if err := cfg.validateNonNegative(); err != nil {
		return err
	}
	if cfg.MaxFileSize < 0 {
		return fmt.Errorf("%w: MaxFileSize %d is negative", ErrBadConfig, cfg.MaxFileSize)
	}
	if most := MaxFileRefBytes(); cfg.MaxContent < most {
		// A file would upload and its FILE message then be refused.
		return fmt.Errorf("%w: MaxContent %d under %d, the largest file description a FILE "+
			"message holds", ErrBadConfig, cfg.MaxContent, most)
	}
	if cfg.HashMemoryKiB < minHashMemoryKiB || cfg.HashMemoryKiB > maxHashMemoryKiB ||
		cfg.HashTime > maxHashTime {
		return fmt.Errorf("%w: memory %d KiB (%d..%d), time %d (at most %d)", ErrBadHashCost,
			cfg.HashMemoryKiB, minHashMemoryKiB, maxHashMemoryKiB, cfg.HashTime, maxHashTime)
	}
	return nil
}

// validateNonNegative refuses the negative sizes, counts and times that
// withDefaults leaves in place.
func (cfg Config) validateNonNegative() error {
	counts := []struct {
		name string
		n    int
	}{
		{"MaxContent", cfg.MaxContent}, {"MaxGroupMembers", cfg.MaxGroupMembers},
		{"HashConcurrency", cfg.HashConcurrency}, {"HashTime", cfg.HashTime},
		{"Ephemeral.TypingMaxMembers", cfg.Ephemeral.TypingMaxMembers},
		{"MaxUploads", cfg.MaxUploads},
	}
	for _, c := range counts {
		if c.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrBadConfig, c.name, c.n)
		}
	}
	times := []struct {
		name string
		d    time.Duration
	}{
		{"TokenTTL", cfg.TokenTTL}, {"RefreshTTL", cfg.RefreshTTL},
		{"RecallWindow", cfg.RecallWindow}, {"EditWindow", cfg.EditWindow},
		{"PublishTimeout", cfg.PublishTimeout}, {"LoginBatchWait", cfg.LoginBatchWait},
		{"FileRetention", cfg.FileRetention},
	}
	for _, d := range times {
		if d.d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrBadConfig, d.name, d.d)
		}
	}
	limits := []struct {
		name string
		c    ratelimit.Config
	}{
		{"LoginAccountLimit", cfg.LoginAccountLimit}, {"LoginAddrLimit", cfg.LoginAddrLimit},
		{"RegisterAddrLimit", cfg.RegisterAddrLimit}, {"SearchLimit", cfg.SearchLimit},
		{"UploadLimit", cfg.UploadLimit}, {"MessageSearchLimit", cfg.MessageSearchLimit},
		{"PinLimit", cfg.PinLimit},
		{"Ephemeral.TypingLimit", cfg.Ephemeral.TypingLimit},
		{"Ephemeral.TypingUserLimit", cfg.Ephemeral.TypingUserLimit},
		{"Ephemeral.PresenceLimit", cfg.Ephemeral.PresenceLimit},
	}
	for _, l := range limits {
		if l.c.Burst < 0 || l.c.Per < 0 || l.c.MaxKeys < 0 {
			return fmt.Errorf("%w: %s %d/%v (max keys %d) is negative", ErrBadConfig, l.name,
				l.c.Burst, l.c.Per, l.c.MaxKeys)
		}
	}
	return nil
}

// MaxFileRefBytes is the content length in bytes of the largest FILE
// message without a caption: a file id, a name and a type at their longest,
// the size, the hash and an image's dimensions. MaxContent must hold it.
func MaxFileRefBytes() int {
	size, side := int64(math.MaxInt64), int32(math.MaxInt32)
	ref := &common.FileRef{FileId: strings.Repeat("0", 2*fileIDBytes),
		Name: strings.Repeat("x", maxFileName), Mime: strings.Repeat("x", maxFileMime),
		Size: size, Sha256: make([]byte, 32), Width: &side, Height: &side}
	return ref.BLength()
}

// MaxMessageBody is the body length in bytes of the largest SEND or EDIT
// request logic accepts when content may be maxContent bytes (zero:
// DefaultMaxContent): ids at their longest, a reply and maxMentions
// mentions, plus the content. A gateway whose frame body limit is below it
// closes clients for sending what logic would take.
func MaxMessageBody(maxContent int) int {
	if maxContent == 0 {
		maxContent = DefaultMaxContent
	}
	clientMsgID, convID := strings.Repeat("x", maxClientMsgID), strings.Repeat("x", maxConvID)
	maxSeq, all := int64(math.MaxInt64), true
	send := &protocol.SendReq{ClientMsgId: clientMsgID, ToUserId: math.MaxInt64, ConvId: convID,
		ReplyToSeq: &maxSeq, Mentions: slices.Repeat([]int64{math.MaxInt64}, maxMentions),
		MentionAll: &all}
	edit := &protocol.EditReq{ClientMsgId: clientMsgID, ConvId: convID, Seq: math.MaxInt64}
	// Content is a length-prefixed binary: its bytes add to the empty one.
	return max(send.BLength(), edit.BLength()) + maxContent
}

// clientLimits returns the limits a LoginResp tells clients, from cfg with
// its defaults applied: a client's UI then offers what this instance
// allows (a longer recall window, a larger file) and no more. A new struct
// each call: the gateway may hold the reply after logic's return.
func (cfg Config) clientLimits() *common.ServerLimits {
	// Clamped: a count past i32 is no limit a client could reach anyway.
	content := int32(min(cfg.MaxContent, math.MaxInt32))
	members := int32(min(cfg.MaxGroupMembers, math.MaxInt32))
	file := cfg.MaxFileSize
	recall, edit := cfg.RecallWindow.Milliseconds(), cfg.EditWindow.Milliseconds()
	pins := int32(MaxPins)
	return &common.ServerLimits{MaxContentBytes: &content, MaxFileBytes: &file,
		RecallWindowMs: &recall, EditWindowMs: &edit, MaxGroupMembers: &members,
		MaxPins: &pins}
}

// argon returns the cost of new password hashes.
func (cfg Config) argon() argonParams {
	p := defaultArgon
	p.memoryKiB, p.time = uint32(cfg.HashMemoryKiB), uint32(cfg.HashTime)
	return p
}

// cheapHashing reports whether new password hashes cost less than the
// defaults, which only benchmarks and tests should want.
func (cfg Config) cheapHashing() bool {
	return cfg.HashMemoryKiB < DefaultHashMemoryKiB || cfg.HashTime < DefaultHashTime
}

// Deps are the shared clients the logic role uses; the caller owns them and
// closes them after Stop.
type Deps struct {
	// Log receives the role's logs as they are (the caller adds a role
	// field if it wants one); nothing per message is above debug.
	Log zerolog.Logger
	// JS publishes message events; New ensures MQ's stream exists on it.
	JS jetstream.JetStream
	// MQ names the stream and subjects.
	MQ mq.Names
	// Routes records where each logged-in device is connected.
	Routes route.Table
	// Watches stores presence watch sets; task reads the same store. Nil
	// keeps them in this process only, which suits a logic without task.
	Watches route.Watches
	// Metrics, when set, receives the service's metrics (call latency,
	// outbox, group commit). Serve may be called once per registry.
	Metrics prometheus.Registerer
}

func (d Deps) validate() error {
	if d.JS == nil {
		return fmt.Errorf("%w: JS", ErrMissingDep)
	}
	if d.Routes == nil {
		return fmt.Errorf("%w: Routes", ErrMissingDep)
	}
	return nil
}
