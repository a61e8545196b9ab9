package logic

import (
	"time"

	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// Column limits. String columns carry lengths because MySQL indexes need
// them; validation enforces the same limits before any write.
const (
	maxUsername    = 32
	minUsername    = 3
	maxClientMsgID = 64
	maxDeviceID    = 64
	maxConvID      = 64
	maxPlatform    = 64
	maxNickRunes   = 64
	maxNickBytes   = 4 * maxNickRunes // the most 64 characters take in UTF-8
	maxAvatarURL   = 512
	maxGroupName   = 64 // runes
)

// userRow is a registered account.
type userRow struct {
	ID           int64  `gorm:"primaryKey;autoIncrement"`
	Username     string `gorm:"size:32;not null;uniqueIndex"`
	PasswordHash string `gorm:"size:160;not null"`
	Nickname     string `gorm:"size:255;not null;default:''"`
	AvatarURL    string `gorm:"size:512;not null;default:''"`
	CreatedAt    time.Time
	// DeletedMs is when the account was deleted (Unix milliseconds), 0 while
	// it lives. The row stays as a tombstone, so that its id, named by the
	// messages it sent, is never handed out again; see deleteaccount.go.
	DeletedMs int64 `gorm:"not null;default:0"`
	// SuspendedMs is when an operator suspended the account (Unix
	// milliseconds), 0 while it is not; SuspendReason is the operator's
	// note why, never shown to the user. AutoMigrate adds both to older
	// tables, zero. See admin.go.
	SuspendedMs   int64  `gorm:"not null;default:0"`
	SuspendReason string `gorm:"size:512;not null;default:''"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (userRow) TableName(n schema.Namer) string { return n.TableName("user") }

// convRow is a conversation and the last seq handed out in it. LastMsgID and
// UpdatedMs describe its last message and are written in the transaction
// that stores it; (UpdatedMs, ID) is the position SyncConvs pages by.
type convRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	Type      int16  `gorm:"not null"`
	LastSeq   int64  `gorm:"not null;default:0"`
	LastMsgID int64  `gorm:"not null;default:0"`
	// UpdatedMs is the send time of the last message in Unix milliseconds
	// (creation time while empty). It never moves back, because it is taken
	// under the row lock (see insertWithSeq).
	UpdatedMs int64 `gorm:"not null;default:0"`
	UpdatedAt time.Time
	// Group fields, unused by p2p conversations. MemberVer grows with every
	// membership change, under the row lock, so a cached member list is
	// current exactly when its version matches (see members.go).
	Name        string `gorm:"size:255;not null;default:''"`
	OwnerID     int64  `gorm:"not null;default:0"`
	MemberCount int32  `gorm:"not null;default:0"`
	MemberVer   int64  `gorm:"not null;default:0"`
	Dismissed   bool   `gorm:"not null;default:false"`
	// DismissedSeq is the seq of the DISMISS event, so that SyncConvs tells
	// who was still a member then; 0 for groups dismissed before it was
	// kept, which read as dismissed to every member, former ones too.
	DismissedSeq int64 `gorm:"not null;default:0"`
	// Reacted is set by the first reaction in the conversation and never
	// cleared: SYNC reads the reactions of a page only where it is set, as
	// most conversations never see one (see Sync).
	Reacted bool `gorm:"not null;default:false"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (convRow) TableName(n schema.Namer) string { return n.TableName("conversation") }

// memberRow is one user's membership of a conversation, for any number of
// members: a p2p conversation has two rows, a group will have one per member.
type memberRow struct {
	ConvID string `gorm:"primaryKey;size:64"`
	UserID int64  `gorm:"primaryKey;autoIncrement:false"`
	// ReadSeq is the user's read position on any device; it only moves
	// forward and never past the conversation's LastSeq.
	ReadSeq  int64 `gorm:"not null;default:0"`
	JoinedMs int64 `gorm:"not null"` // Unix milliseconds
	// Role is a common.GroupRole in groups; p2p members are MEMBER.
	Role int16 `gorm:"not null;default:1"`
	// JoinSeq is the first seq the member may read: history from before a
	// join is not theirs. LeftSeq, when not 0, is the last: the event that
	// removed them, or their leaving.
	JoinSeq int64 `gorm:"not null;default:0"`
	LeftSeq int64 `gorm:"not null;default:0"`
	// ChangedMs is when this member's own view last changed without a new
	// message: read position, join, leave, mute, clear. SyncConvs orders by the later of
	// it and the conversation's UpdatedMs, so a read on one device reaches
	// the user's other devices even when they were offline.
	ChangedMs int64 `gorm:"not null;default:0"`
	// ClearedSeq is how far the user cleared the history for themselves
	// (CLEAR_CONV): SYNC returns nothing at or below it. It only moves
	// forward. HiddenSeq, when not 0, is the ClearedSeq at which the user
	// also hid the conversation: SyncConvs leaves it out until a message
	// after it arrives.
	ClearedSeq int64 `gorm:"not null;default:0"`
	HiddenSeq  int64 `gorm:"not null;default:0"`
	// MentionSeq is the newest seq that mentions the user (by id or @all),
	// 0 when none; moved forward in the transaction storing that message.
	MentionSeq int64 `gorm:"not null;default:0"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (memberRow) TableName(n schema.Namer) string { return n.TableName("conv_member") }

// deliveredRow is the highest seq one device of a user has handed to its
// application in one conversation; it never moves back.
type deliveredRow struct {
	UserID   int64  `gorm:"primaryKey;autoIncrement:false"`
	DeviceID string `gorm:"primaryKey;size:64"`
	ConvID   string `gorm:"primaryKey;size:64"`
	Seq      int64  `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (deliveredRow) TableName(n schema.Namer) string { return n.TableName("delivered") }

// outboxRow is a message event written in the transaction that stores its
// message and deleted once JetStream acked it, so that a crash between commit
// and publish never loses the event (see outbox.go).
type outboxRow struct {
	ID      int64  `gorm:"primaryKey;autoIncrement"`
	MsgID   int64  `gorm:"not null"`
	Payload []byte `gorm:"not null"` // the Thrift-encoded event.MessageEvent
	// CreatedMs is Unix milliseconds: an integer compares the same way on
	// every store, where SQLite compares times as text.
	CreatedMs int64 `gorm:"not null"`
	// ConvID picks the event's subject (mq.Names.MessageSubject). It is not
	// stored: the relay reads it back from Payload (relaySubject).
	ConvID string `gorm:"-"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (outboxRow) TableName(n schema.Namer) string { return n.TableName("outbox") }

// messageRow is one stored message; its ID is the msg_id. Its two unique
// indexes (see messageIndexes) are the store's guarantees: no two messages
// share a seq in a conversation, and a client id is stored once per sender.
type messageRow struct {
	ID           int64  `gorm:"primaryKey;autoIncrement"`
	ConvID       string `gorm:"size:64;not null"`
	Seq          int64  `gorm:"not null"`
	SenderID     int64  `gorm:"not null"`
	SenderDevice string `gorm:"size:64;not null"`
	ClientMsgID  string `gorm:"size:64;not null"`
	ContentType  int16  `gorm:"not null"`
	Content      []byte `gorm:"not null"`
	CreatedAt    time.Time
	// Recalled and EditedMs are the message's state after RECALL and EDIT
	// events; a recalled message's content is erased.
	Recalled bool  `gorm:"not null;default:false"`
	EditedMs int64 `gorm:"not null;default:0"`
	// ReplyToSeq is the seq the message quotes, 0 for none. Mentions are
	// the user ids it mentions, stored encoded (encodeMentions);
	// MentionAll mentions every member. An edit or recall keeps all three.
	ReplyToSeq int64  `gorm:"not null;default:0"`
	Mentions   string `gorm:"size:1024;not null;default:''"`
	MentionAll bool   `gorm:"not null;default:false"`
	// mentionIDs is Mentions decoded, set on a message being stored.
	mentionIDs []int64 `gorm:"-"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (messageRow) TableName(n schema.Namer) string { return n.TableName("message") }

func (m *messageRow) toThrift() *common.Message {
	return &common.Message{
		MsgId:        m.ID,
		ConvId:       m.ConvID,
		Seq:          m.Seq,
		SenderId:     m.SenderID,
		ClientMsgId:  m.ClientMsgID,
		ContentType:  common.ContentType(m.ContentType),
		Content:      m.Content,
		SendTimeMs:   m.CreatedAt.UnixMilli(),
		SenderDevice: m.SenderDevice,
		Recalled:     m.Recalled,
		EditedMs:     m.EditedMs,
		ReplyToSeq:   setIf(m.ReplyToSeq),
		Mentions:     decodeMentions(m.Mentions),
		MentionAll:   setIf(m.MentionAll),
	}
}

// setIf returns a pointer to v, or nil when v is its type's zero value: an
// optional field that says nothing is left unset and costs no bytes on the
// wire (every PUSH carries a Message).
func setIf[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// tableIndex is a secondary index that migrate creates, named after its table
// plus suffix.
type tableIndex struct {
	model   any
	suffix  string
	columns []string
	unique  bool
}

// tableIndexes are created by migrate rather than tagged: a tagged composite
// index needs a fixed name, and SQLite index names are global to the file, so
// two table prefixes in one file would collide. The two unique indexes of
// messages are the store's guarantees; the others serve reads.
var tableIndexes = []tableIndex{
	{model: &messageRow{}, suffix: "_conv_seq", columns: []string{"conv_id", "seq"}, unique: true},
	{model: &messageRow{}, suffix: "_sender_client",
		columns: []string{"sender_id", "client_msg_id"}, unique: true},
	// Message search reads a conversation newest first by id (search.go).
	{model: &messageRow{}, suffix: "_conv_id", columns: []string{"conv_id", "id"}},
	{model: &memberRow{}, suffix: "_user", columns: []string{"user_id", "conv_id"}},
	{model: &convRow{}, suffix: "_updated", columns: []string{"updated_ms", "id"}},
	{model: &memberRow{}, suffix: "_read", columns: []string{"conv_id", "read_seq"}},
}
