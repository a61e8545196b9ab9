package client

import (
	"context"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// SetPushToken registers this device's offline-push token (replacing the
// one it had); an empty token removes it. Logout and sign-out remove it too.
func (c *Client) SetPushToken(ctx context.Context, platform protocol.PushPlatform,
	token, appID string) error {
	req := &protocol.SetPushTokenReq{Platform: platform, Token: token, AppId: appID}
	if err := c.roundTrip(ctx, protocol.Op_SET_PUSH_TOKEN, req,
		protocol.NewSetPushTokenResp()); err != nil {
		return errorf("set push token: %w", err)
	}
	return nil
}

// MuteConv mutes or unmutes convID for the user on all devices: no offline
// notifications for it.
func (c *Client) MuteConv(ctx context.Context, convID string, muted bool) error {
	req := &protocol.MuteConvReq{ConvId: convID, Muted: muted}
	if err := c.roundTrip(ctx, protocol.Op_MUTE_CONV, req, protocol.NewMuteConvResp()); err != nil {
		return errorf("mute %q (%t): %w", convID, muted, err)
	}
	return nil
}

// ClearConv clears convID's history for the user on all devices: SYNC no
// longer returns messages at or below upToSeq (0: the conversation's last
// seq now; capped at it), and the read position moves up to it. With hide
// the conversation also leaves the user's list (ConvSummary.hidden) until a
// newer message arrives. Other members see no change. It returns the
// user's cleared seq, which only moves forward. A Session's own ClearConv
// also stops it handing over what was cleared.
func (c *Client) ClearConv(ctx context.Context, convID string, upToSeq int64,
	hide bool) (int64, error) {
	req := &protocol.ClearConvReq{ConvId: convID, UpToSeq: upToSeq, Hide: hide}
	resp := protocol.NewClearConvResp()
	if err := c.roundTrip(ctx, protocol.Op_CLEAR_CONV, req, resp); err != nil {
		return 0, errorf("clear %q up to %d (hide %t): %w", convID, upToSeq, hide, err)
	}
	return resp.ClearedSeq, nil
}

// SetDND sets the user's do-not-disturb window, minutes after midnight in a
// zone utcOffset minutes east of UTC; start == end switches it off.
func (c *Client) SetDND(ctx context.Context, start, end,
	utcOffset int32) (*protocol.UserSettings, error) {
	req := &protocol.SetDNDReq{StartMinute: start, EndMinute: end, UtcOffsetMinutes: utcOffset}
	resp := protocol.NewUserSettings()
	if err := c.roundTrip(ctx, protocol.Op_SET_DND, req, resp); err != nil {
		return nil, errorf("set dnd: %w", err)
	}
	return resp, nil
}

// GetSettings returns the user's settings; read them after login, as
// another device may have changed them.
func (c *Client) GetSettings(ctx context.Context) (*protocol.UserSettings, error) {
	resp := protocol.NewUserSettings()
	req := &protocol.GetSettingsReq{}
	if err := c.roundTrip(ctx, protocol.Op_GET_SETTINGS, req, resp); err != nil {
		return nil, errorf("get settings: %w", err)
	}
	return resp, nil
}
