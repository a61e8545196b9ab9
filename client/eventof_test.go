package client_test

import (
	"errors"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// TestEventOf_MalformedContentIsAnError feeds the event decoders content no
// server should send: each must return ErrProtocol, not panic, since a
// message's content comes from the network (another user wrote most of it).
func TestEventOf_MalformedContentIsAnError(t *testing.T) {
	contents := map[string][]byte{
		"bad field type":     {0xee, 0x30, 0x30, 0x30},
		"truncated string":   {0x0b, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff, 'a'},
		"huge list":          {0x0f, 0x00, 0x01, 0x0a, 0x7f, 0xff, 0xff, 0xff},
		"trailing bytes":     {0x00, 0x00},
		"missing stop field": {0x0a, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1},
	}
	decoders := []struct {
		name string
		ct   common.ContentType
		dec  func(*common.Message) error
	}{
		{"group", common.ContentType_GROUP_EVENT, func(m *common.Message) error {
			_, err := client.GroupEventOf(m)
			return err
		}},
		{"recall", common.ContentType_RECALL, func(m *common.Message) error {
			_, err := client.RecallEventOf(m)
			return err
		}},
		{"edit", common.ContentType_EDIT, func(m *common.Message) error {
			_, err := client.EditEventOf(m)
			return err
		}},
		{"reaction", common.ContentType_REACTION, func(m *common.Message) error {
			_, err := client.ReactionEventOf(m)
			return err
		}},
	}
	for _, d := range decoders {
		for name, content := range contents {
			t.Run(d.name+"/"+name, func(t *testing.T) {
				m := &common.Message{MsgId: 7, ContentType: d.ct, Content: content}
				var err error
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s of %x panicked: %v", d.name, content, r)
						}
					}()
					err = d.dec(m)
				}()
				if !errors.Is(err, client.ErrProtocol) {
					t.Fatalf("%s of %x: err = %v, want ErrProtocol", d.name, content, err)
				}
			})
		}
	}
}
