package chat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

const helpText = `commands:
  /to <user>   chat with another user
  /history     print the recent history of the conversation again
  /quit        leave
  /help        this text
any other line is sent to the current peer`

func isCommand(line string) bool {
	return strings.HasPrefix(line, "/")
}

// handleLine runs a command or sends a line. It returns errQuit or the error
// that ended the connection; other failures are printed.
func (s *session) handleLine(ctx context.Context, line string) error {
	if !isCommand(line) {
		return s.sendText(ctx, line)
	}
	cmd, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch cmd {
	case "/quit":
		return errQuit
	case "/help":
		s.printf("%s", helpText)
	case "/history":
		if s.peer.id == 0 {
			s.printf("! no peer yet: /to <user>")
			return nil
		}
		return s.check(s.printHistory(ctx))
	case "/to":
		if arg == "" {
			s.printf("! usage: /to <user>")
			return nil
		}
		s.peer = peer{name: arg}
		return s.check(s.resolvePeer(ctx, true))
	default:
		s.printf("! unknown command %s; /help lists them", cmd)
	}
	return nil
}

func (s *session) sendText(ctx context.Context, text string) error {
	switch {
	case s.peer.name == "":
		s.printf("! no peer yet: /to <user>")
		return nil
	case s.peer.id == 0:
		s.printf("! %s does not exist yet; message not sent", s.peer.name)
		return nil
	}
	return s.deliver(ctx, client.SendParams{
		ToUserID: s.peer.id, Text: text, ClientMsgID: client.NewClientMsgID(),
	})
}

// deliver sends p and echoes it once with its seq. When the connection dies
// under it, p waits in the outbox for the reconnect.
func (s *session) deliver(ctx context.Context, p client.SendParams) error {
	ack, err := s.c.Send(ctx, p)
	if err != nil {
		if cerr := s.c.Err(); cerr != nil {
			s.outbox = &p
			return cerr
		}
		s.printf("! not sent: %v", err)
		return nil
	}
	if ack.ConvId == s.cur.conv && !s.cur.mark(ack.Seq) {
		return nil // already printed by a sync after a reconnect
	}
	at := time.UnixMilli(ack.SendTimeMs).Format("15:04:05")
	s.printf("[%s] %s #%d: %s", at, s.names[s.me], ack.Seq, p.Text)
	return nil
}

// resolvePeer looks the peer's name up and, once found, prints the history.
// A peer that does not exist yet is retried by serve every few seconds;
// announce says so the first time.
func (s *session) resolvePeer(ctx context.Context, announce bool) error {
	u, err := s.c.GetUser(ctx, s.peer.name)
	if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
		if announce {
			s.printf("! %s does not exist yet; retrying every %s (or /to %s)",
				s.peer.name, resolveEvery, s.peer.name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	s.peer.id = u.UserId
	s.names[u.UserId] = u.Username
	s.printf("* chatting with %s", u.Username)
	return s.printHistory(ctx)
}

// printHistory prints the last historyLines messages of the conversation
// and marks every stored one as seen.
//
// TODO: SyncReq pages forward from a seq only, so finding the latest messages
// reads the whole conversation; a "before_seq"/reverse flag or the latest seq
// in the reply would make this one request.
func (s *session) printHistory(ctx context.Context) error {
	conv := client.P2PConvID(s.me, s.peer.id)
	s.cur = newCursor(conv)
	var last []*common.Message
	err := s.syncAfter(ctx, conv, 0, func(m *common.Message) {
		s.cur.mark(m.Seq)
		last = append(last, m)
		if len(last) > historyLines {
			last = last[1:]
		}
	})
	if err != nil {
		return err
	}
	s.printf("--- last %d messages with %s ---", len(last), s.peer.name)
	for _, m := range last {
		s.printf("%s", formatMessage(m, s.nameOf(ctx, m.SenderId)))
	}
	return nil
}

// catchUp runs after each login: it resolves the peer or prints what was
// missed while offline, then sends the outbox.
func (s *session) catchUp(ctx context.Context) error {
	switch {
	case s.peer.name == "":
	case s.peer.id == 0 || s.cur.conv == "":
		if err := s.resolvePeer(ctx, true); err != nil {
			return err
		}
	default:
		// Sync from the last seq printed, not from the newest push seen,
		// so that a gap left by the drop is filled.
		err := s.syncAfter(ctx, s.cur.conv, s.cur.upTo, func(m *common.Message) {
			if s.cur.mark(m.Seq) {
				s.printf("%s", formatMessage(m, s.nameOf(ctx, m.SenderId)))
			}
		})
		if err != nil {
			return err
		}
	}
	if p := s.outbox; p != nil {
		s.outbox = nil
		return s.deliver(ctx, *p)
	}
	return nil
}

// syncAfter pages through conv after seq, oldest first, up to maxSyncPages.
func (s *session) syncAfter(ctx context.Context, conv string, after int64,
	each func(*common.Message)) error {
	for range maxSyncPages {
		resp, err := s.c.Sync(ctx, conv, after, syncPage)
		if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
			// The IDL does not say how a server answers for a conversation
			// with no message yet; NOT_FOUND is read as empty.
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range resp.Messages {
			each(m)
			after = max(after, m.Seq)
		}
		if !resp.HasMore || len(resp.Messages) == 0 {
			return nil
		}
	}
	s.printf("! more than %d messages behind; older ones skipped", maxSyncPages*syncPage)
	return nil
}

// printPush prints a push unless it was printed already (its seq is behind
// the cursor of the current conversation).
func (s *session) printPush(ctx context.Context, m *common.Message) {
	if m.ConvId == s.cur.conv && !s.cur.mark(m.Seq) {
		return
	}
	s.printf("%s", formatMessage(m, s.nameOf(ctx, m.SenderId)))
}

// nameOf returns a user's name, asking the server once per unknown id.
func (s *session) nameOf(ctx context.Context, id int64) string {
	if name, ok := s.names[id]; ok {
		return name
	}
	ctx, cancel := context.WithTimeout(ctx, lookupDeadline)
	defer cancel()
	u, err := s.c.GetUserByID(ctx, id)
	if err != nil {
		return fmt.Sprintf("user#%d", id)
	}
	s.names[id] = u.Username
	return u.Username
}
