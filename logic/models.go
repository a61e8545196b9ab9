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
)

// userRow is a registered account.
type userRow struct {
	ID           int64  `gorm:"primaryKey;autoIncrement"`
	Username     string `gorm:"size:32;not null;uniqueIndex"`
	PasswordHash string `gorm:"size:160;not null"`
	CreatedAt    time.Time
}

// TableName names the table through the namer so that TablePrefix applies.
func (userRow) TableName(n schema.Namer) string { return n.TableName("user") }

// convRow is a conversation and the last seq handed out in it.
type convRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	Type      int16  `gorm:"not null"`
	LastSeq   int64  `gorm:"not null;default:0"`
	UpdatedAt time.Time
}

// TableName names the table through the namer so that TablePrefix applies.
func (convRow) TableName(n schema.Namer) string { return n.TableName("conversation") }

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
	}
}

// messageIndexes are the unique indexes of the messages table, by name suffix.
// They are created by migrate rather than tagged: a tagged composite index
// needs a fixed name, and SQLite index names are global to the file, so two
// table prefixes in one file would collide.
var messageIndexes = []struct {
	suffix  string
	columns [2]string
}{
	{suffix: "_conv_seq", columns: [2]string{"conv_id", "seq"}},
	{suffix: "_sender_client", columns: [2]string{"sender_id", "client_msg_id"}},
}
