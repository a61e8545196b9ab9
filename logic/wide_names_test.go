package logic

import (
	"strings"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A nickname and a group name may have 64 characters, as docs/protocol.md
// says, whatever the characters: 64 of four bytes each (256 bytes, such as
// emoji) were refused as "over 64 characters" by a 255-byte bound.
func TestNamesOf64FourByteCharacters(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		wide := strings.Repeat("😀", 64)

		resp, err := e.svc.UpdateProfile(ctxBG, session(alice, 1),
			&protocol.UpdateProfileReq{Nickname: strp(wide)})
		if err != nil || resp.Nickname != wide {
			t.Fatalf("nickname of 64 emoji: %v, %+v", err, resp)
		}
		_, err = e.svc.UpdateProfile(ctxBG, session(alice, 1),
			&protocol.UpdateProfileReq{Nickname: strp(wide + "😀")})
		wantCode(t, err, common.ErrorCode_TOO_LARGE)

		g := e.group(t, alice, wide)
		info, err := e.svc.GetGroup(ctxBG, session(alice, 1), &protocol.GetGroupReq{ConvId: g})
		if err != nil || info.Name != wide {
			t.Fatalf("group named with 64 emoji: %v, %+v", err, info)
		}
		_, err = e.manage(alice, g, common.GroupAction_RENAME, nil, wide+"😀", 0)
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	})
}
