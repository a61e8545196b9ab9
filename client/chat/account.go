package chat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// handleAccountCommand runs /block, /unblock and /devices; false means cmd
// is none of them.
func (s *session) handleAccountCommand(ctx context.Context, cmd, arg string) bool {
	switch cmd {
	case "/block", "/unblock":
		s.report(s.block(ctx, arg, cmd == "/block"))
	case "/devices":
		s.report(s.printDevices(ctx))
	default:
		return false
	}
	return true
}

// block blocks or unblocks the user named arg.
func (s *session) block(ctx context.Context, arg string, blocked bool) error {
	ids, err := s.userIDs(ctx, strings.Fields(arg))
	switch {
	case err != nil:
		return err
	case len(ids) != 1:
		return fmt.Errorf("usage: /block <user> or /unblock <user>")
	case ids[0] == s.me:
		return fmt.Errorf("cannot block yourself")
	}
	err = s.request(ctx, func(ctx context.Context, c *client.Client) error {
		return c.Block(ctx, ids[0], blocked)
	})
	if err != nil {
		return err
	}
	name := s.names[ids[0]]
	if blocked {
		s.printf("* blocked %s: neither of you can message the other 1:1, and %s sees you "+
			"offline", name, name)
		return nil
	}
	// The server took us out of name's watched set at the block and does
	// not put us back: name hears our changes again only once their client
	// sends its set again (a /presence or a reconnect there).
	s.printf("* unblocked %s: %s sees you as you are again, and hears your changes after "+
		"their next /presence or reconnect", name, name)
	return nil
}

// printDevices lists the user's devices, this one marked.
func (s *session) printDevices(ctx context.Context) error {
	var devices []*protocol.Device
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		devices, err = c.ListDevices(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.printf("--- %d device%s ---", len(devices), plural(len(devices)))
	for _, d := range devices {
		state := onlineWord(d.Online)
		if d.Current {
			state += ", this one"
		}
		last := time.UnixMilli(d.LastLoginMs).Format("2006-01-02 15:04")
		s.printf("  %s (%s, %s; last login %s)", d.DeviceId, d.Platform, state, last)
	}
	return nil
}
