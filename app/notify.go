package app

import (
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/cloudwego/kitex/pkg/connpool"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
)

// bindNotify defines task's offline-notification flags. The webhook URL has
// no default: unset, notifications are off.
func bindNotify(fs *flag.FlagSet, c *Config, role Role) {
	n := &c.Task.Notify
	fs.StringVar(&n.WebhookURL, "notify-webhook-url", "",
		"URL that offline push notifications are POSTed to; empty: notifications off")
	fs.StringVar(&n.Secret, "notify-secret", "",
		"HMAC-SHA256 key of the webhook signature header (required with a webhook URL, "+
			"refused without one)")
	fs.DurationVar(&n.Timeout, "notify-timeout", 0, "timeout of one webhook call (default 5s)")
	fs.IntVar(&n.Attempts, "notify-attempts", 0,
		"webhook attempts per notification before it is recorded as failed (default 4)")
	fs.DurationVar(&n.Window, "notify-window", 0,
		"coalescing window: messages to one device within it become one notification "+
			"(default 2s, negative: none)")
	fs.IntVar(&n.Concurrency, "notify-concurrency", 0, "webhook calls in flight (default 16)")
	fs.BoolFunc("notify-preview", "send the start of the message text (default true)",
		func(s string) error {
			v, err := strconv.ParseBool(s)
			n.NoPreview = !v
			return err
		})
	if role == RoleTask {
		fs.Func("logic-addrs", "comma-separated logic addresses task asks for push tokens "+
			"(default 127.0.0.1:7100)", func(s string) error {
			c.LogicAddrs = splitList(s)
			return nil
		})
	}
}

// validateNotify checks the webhook flags under their own names: task's
// NotifyConfig checks them too, but names the fields of the struct, which
// an operator never typed.
func (c *Config) validateNotify() error {
	n := c.Task.Notify
	if !c.Role.Has(RoleTask) {
		return nil
	}
	if n.WebhookURL == "" {
		if n.Secret != "" {
			// Most likely the URL was forgotten or misspelt: without it
			// notifications would be off with no word said.
			return fmt.Errorf("%w: --notify-secret is set without --notify-webhook-url, "+
				"which switches notifications on: set both or neither", ErrConfig)
		}
		return nil
	}
	u, err := url.Parse(n.WebhookURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: --notify-webhook-url %q: want an http:// or https:// URL",
			ErrConfig, n.WebhookURL)
	}
	if n.Secret == "" {
		return fmt.Errorf("%w: --notify-webhook-url is set: --notify-secret is required too, "+
			"to sign the calls", ErrConfig)
	}
	return nil
}

// taskLogicClient is the Logic client task asks for notification targets:
// the local logic in a process that runs it, else --logic-addrs.
func (s *System) taskLogicClient() (logic.Client, error) {
	lc, err := s.logicClient("resonance_task_logic_call_seconds",
		"Latency of task's calls to logic.", connpool.IdleConfig{
			MaxIdlePerAddress: 16, MaxIdleGlobal: 64, MaxIdleTimeout: time.Minute,
		})
	if err != nil {
		return nil, fmt.Errorf("app: task's logic client: %w", err)
	}
	return lc, nil
}
