package logic

import (
	"database/sql"
	"math/bits"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/obs"
)

// queries are the statements of the hot paths written out rather than built
// by GORM: a send's transaction and a token login run them thousands of
// times a second, and GORM's statement building and reflection cost more
// than the store's work on them. They run through stmtPool, prepared once.
// Names are quoted with backquotes, which SQLite and MySQL both read.
type queries struct {
	// loginDevice reads a device's login state and its user's name and
	// suspension.
	loginDevice string
	// deviceGen reads a device's token generation.
	deviceGen string
	// sessionState reads a user's deletion and the token generation of one
	// of its devices (NULL without a row): what authorizeWrite checks.
	sessionState string
	// peerState counts a user (0 or 1), and the blocks between two users
	// plus how many of the two (the user first, then the other) were deleted.
	peerState string
	// pairState counts the blocks between two users, either way, plus how
	// many of the two were deleted.
	pairState string
	// insertMessage inserts a message row; its id is the insert id.
	insertMessage string
	// insertOutbox inserts an outbox row; its id is the insert id.
	insertOutbox string
	// moveConv and moveConvSeq set a conversation's last message, and with
	// moveConvSeq its last seq too.
	moveConv, moveConvSeq string
	// moveRead moves a member's read position forward to a seq.
	moveRead string
	// nextSeq increments a conversation's last seq and returns its row
	// (convColumns); lockConv reads the row FOR UPDATE (MySQL).
	nextSeq, lockConv string
	// The plain path's statements by size (plainbatch.go), at index k for
	// 1<<k rows or ids: multi-row inserts of messages and outbox rows, and
	// the rows of a list of conversations, read and read FOR UPDATE.
	messageRows, outboxRows    [maxChunkLog + 1]string
	convsByID, convsByIDLocked [maxConvsLog + 1]string
	// And by size too: the last seq, last message and time of a list of
	// conversations, and the read positions of a list of members, each set
	// by one UPDATE of CASEs.
	convMoves, readMoves [maxConvsLog + 1]string
	// And the mention positions: of a list of members, and of every active
	// member of a list of conversations but each one's sender (@all).
	mentionMoves, mentionAllMoves [maxConvsLog + 1]string
	// blocksBetween lists the blocks between the users of each of a list of
	// pairs, either way, then as (id, 0) those of the pairs' users whose
	// accounts were deleted.
	blocksBetween [maxConvsLog + 1]string
}

const (
	// maxChunkLog is log2(maxChunk).
	maxChunkLog = 4
	// maxConvsLog bounds the conversations the plain path reads in one
	// statement: 1<<maxConvsLog is more than a batch holds.
	maxConvsLog = 9
)

// batchStmt marks a statement of the plain path: the statement pool keeps it
// prepared however many parameters it has (see pooled), since its texts are
// a fixed few.
const batchStmt = "/*batch*/ "

// convColumns are the columns of convRow in the order queryConv scans them.
const convColumns = "id, type, last_seq, last_msg_id, updated_ms, updated_at, name, owner_id, " +
	"member_count, member_ver, dismissed"

func newQueries(t tableNames) queries {
	q := func(table string) string { return "`" + table + "`" }
	qs := queries{
		loginDevice: "SELECT d.platform, d.last_login_ms, d.token_gen, u.username, u.suspended_ms " +
			"FROM " +
			q(t.device) + " d JOIN " + q(t.user) + " u ON u.id = d.user_id " +
			"WHERE d.user_id = ? AND d.device_id = ?",
		deviceGen: "SELECT token_gen FROM " + q(t.device) + " WHERE user_id = ? AND device_id = ?",
		sessionState: "SELECT u.deleted_ms, d.token_gen FROM " + q(t.user) + " u LEFT JOIN " +
			q(t.device) + " d ON d.user_id = u.id AND d.device_id = ? WHERE u.id = ?",
		peerState: "SELECT (SELECT COUNT(*) FROM " + q(t.user) + " WHERE id = ?), " +
			"(SELECT COUNT(*) FROM " + q(t.block) + " WHERE (blocker_id = ? AND blocked_id = ?) " +
			"OR (blocker_id = ? AND blocked_id = ?)) + " +
			"(SELECT COUNT(*) FROM " + q(t.user) + " WHERE id IN (?, ?) AND deleted_ms <> 0)",
		pairState: "SELECT (SELECT COUNT(*) FROM " + q(t.block) + " WHERE (blocker_id = ? AND " +
			"blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?)) + " +
			"(SELECT COUNT(*) FROM " + q(t.user) + " WHERE id IN (?, ?) AND deleted_ms <> 0)",
		insertMessage: "INSERT INTO " + q(t.message) + " (conv_id, seq, sender_id, sender_device, " +
			"client_msg_id, content_type, content, created_at, recalled, edited_ms, " +
			"reply_to_seq, mentions, mention_all) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		insertOutbox: "INSERT INTO " + q(t.outbox) + " (msg_id, payload, created_ms) VALUES (?, ?, ?)",
		moveConv: "UPDATE " + q(t.conv) + " SET last_msg_id = ?, updated_ms = ?, updated_at = ? " +
			"WHERE id = ?",
		moveConvSeq: "UPDATE " + q(t.conv) + " SET last_seq = ?, last_msg_id = ?, updated_ms = ?, " +
			"updated_at = ? WHERE id = ?",
		moveRead: "UPDATE " + q(t.member) + " SET read_seq = ? " +
			"WHERE conv_id = ? AND user_id = ? AND read_seq < ?",
		nextSeq: "UPDATE " + q(t.conv) + " SET last_seq = last_seq + 1 WHERE id = ? " +
			"RETURNING " + convColumns,
		lockConv: "SELECT " + convColumns + " FROM " + q(t.conv) + " WHERE id = ? FOR UPDATE",
	}
	for k := range qs.messageRows {
		qs.messageRows[k] = multiRow(batchStmt+"INSERT INTO "+q(t.message)+" (conv_id, seq, "+
			"sender_id, sender_device, client_msg_id, content_type, content, created_at, recalled, "+
			"edited_ms, reply_to_seq, mentions, mention_all) VALUES ",
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 1<<k)
		qs.outboxRows[k] = multiRow(batchStmt+"INSERT INTO "+q(t.outbox)+
			" (msg_id, payload, created_ms) VALUES ", "(?, ?, ?)", 1<<k)
	}
	for k := range qs.convsByID {
		in := strings.TrimSuffix(strings.Repeat("?, ", 1<<k), ", ")
		qs.convsByID[k] = batchStmt + "SELECT " + convColumns + " FROM " + q(t.conv) +
			" WHERE id IN (" + in + ")"
		qs.convsByIDLocked[k] = qs.convsByID[k] + " ORDER BY id FOR UPDATE"
		whens := strings.Repeat(" WHEN ? THEN ?", 1<<k)
		qs.convMoves[k] = batchStmt + "UPDATE " + q(t.conv) +
			" SET last_seq = CASE id" + whens + " END, last_msg_id = CASE id" + whens +
			" END, updated_ms = CASE id" + whens + " END, updated_at = CASE id" + whens +
			" END WHERE id IN (" + in + ")"
		qs.readMoves[k] = batchStmt + "UPDATE " + q(t.member) + " SET read_seq = CASE" +
			strings.Repeat(" WHEN conv_id = ? AND user_id = ? THEN ?", 1<<k) +
			" ELSE read_seq END WHERE " + strings.TrimSuffix(strings.Repeat(
			"(conv_id = ? AND user_id = ? AND read_seq < ?) OR ", 1<<k), " OR ")
		qs.mentionMoves[k] = batchStmt + "UPDATE " + q(t.member) + " SET mention_seq = CASE" +
			strings.Repeat(" WHEN conv_id = ? AND user_id = ? THEN ?", 1<<k) +
			" ELSE mention_seq END WHERE " + strings.TrimSuffix(strings.Repeat(
			"(conv_id = ? AND user_id = ? AND mention_seq < ?) OR ", 1<<k), " OR ")
		qs.mentionAllMoves[k] = batchStmt + "UPDATE " + q(t.member) + " SET mention_seq = CASE" +
			strings.Repeat(" WHEN conv_id = ? AND user_id <> ? THEN ?", 1<<k) +
			" ELSE mention_seq END WHERE left_seq = 0 AND (" + strings.TrimSuffix(strings.Repeat(
			"(conv_id = ? AND user_id <> ? AND mention_seq < ?) OR ", 1<<k), " OR ") + ")"
		qs.blocksBetween[k] = batchStmt + "SELECT blocker_id, blocked_id FROM " + q(t.block) +
			" WHERE " + strings.TrimSuffix(strings.Repeat("(blocker_id = ? AND blocked_id = ?) OR "+
			"(blocker_id = ? AND blocked_id = ?) OR ", 1<<k), " OR ") +
			" UNION ALL SELECT id, 0 FROM " + q(t.user) + " WHERE deleted_ms <> 0 AND id IN (" +
			strings.TrimSuffix(strings.Repeat("?, ?, ", 1<<k), ", ") + ")"
	}
	return qs
}

// moveConvs returns the UPDATE of n conversations' last seq, last message
// and time, n as readConvs: per conversation, its id and last seq, its id
// and last message id, its id and updated_ms, its id and updated_at, then
// the n ids.
func (q *queries) moveConvs(n int) string { return q.convMoves[bits.Len(uint(n))-1] }

// blocks returns the SELECT of the blocks between the users of n pairs, n
// as readConvs: per pair, its users in one order and in the other.
func (q *queries) blocks(n int) string { return q.blocksBetween[bits.Len(uint(n))-1] }

// moveReads returns the UPDATE of n members' read positions, n as readConvs,
// each moving only forward: per member its conversation, user and seq, then
// again per member its conversation, user and seq.
func (q *queries) moveReads(n int) string { return q.readMoves[bits.Len(uint(n))-1] }

// moveMentions returns the UPDATE of n members' mention positions, n as
// readConvs, each moving only forward: per member its conversation, user and
// seq, then the same again. A member listed twice takes the first seq.
func (q *queries) moveMentions(n int) string { return q.mentionMoves[bits.Len(uint(n))-1] }

// moveAllMentions returns the UPDATE of the mention positions of every
// active member of n @all messages' conversations but the sender, n as
// readConvs: per message its conversation, sender and seq, then the same
// again. The CASE takes the first message that applies to a member, so a
// conversation's messages come newest first.
func (q *queries) moveAllMentions(n int) string { return q.mentionAllMoves[bits.Len(uint(n))-1] }

// insertMessages returns the INSERT of n message rows, n a power of two up
// to maxChunk.
func (q *queries) insertMessages(n int) string { return q.messageRows[bits.Len(uint(n))-1] }

// insertOutboxes returns the INSERT of n outbox rows, n as insertMessages.
func (q *queries) insertOutboxes(n int) string { return q.outboxRows[bits.Len(uint(n))-1] }

// readConvs returns the SELECT of n conversations' rows by id, n a power of
// two up to 1<<maxConvsLog, locked FOR UPDATE when lock is set.
func (q *queries) readConvs(n int, lock bool) string {
	if lock {
		return q.convsByIDLocked[bits.Len(uint(n))-1]
	}
	return q.convsByID[bits.Len(uint(n))-1]
}

// execRaw runs query in tx (a transaction or the pool) past GORM's
// callbacks, observed as op (create, update) in resonance_db_query_seconds
// like GORM's statements, and translates the store's error as GORM does
// (TranslateError): a unique violation is gorm.ErrDuplicatedKey on both
// stores.
func execRaw(tx *gorm.DB, op, query string, args ...any) (sql.Result, error) {
	start := time.Now()
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, query, args...)
	obs.ObserveDB(tx, op, start)
	if err != nil {
		if t, ok := tx.Dialector.(gorm.ErrorTranslator); ok {
			err = t.Translate(err)
		}
		return nil, err
	}
	return res, nil
}

// insertID runs an INSERT in tx and returns the row's auto-increment id.
func insertID(tx *gorm.DB, query string, args ...any) (int64, error) {
	res, err := execRaw(tx, "create", query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
