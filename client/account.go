package client

import (
	"context"
	"fmt"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Block blocks (blocked true) or unblocks userID for the logged-in user:
// while either of two users blocks the other, neither can send to the
// other 1:1. Both ways it is idempotent; blocking oneself fails with
// BAD_REQUEST and an unknown user with NOT_FOUND.
func (c *Client) Block(ctx context.Context, userID int64, blocked bool) error {
	req := &protocol.BlockReq{UserId: userID, Blocked: blocked}
	if err := c.roundTrip(ctx, protocol.Op_BLOCK, req, protocol.NewBlockResp()); err != nil {
		return fmt.Errorf("client: block user %d (%t): %w", userID, blocked, err)
	}
	return nil
}

// ListDevices returns the devices of the logged-in user, this one marked
// Current.
func (c *Client) ListDevices(ctx context.Context) ([]*protocol.Device, error) {
	resp := protocol.NewListDevicesResp()
	err := c.roundTrip(ctx, protocol.Op_LIST_DEVICES, &protocol.ListDevicesReq{}, resp)
	if err != nil {
		return nil, fmt.Errorf("client: list devices: %w", err)
	}
	return resp.Devices, nil
}
