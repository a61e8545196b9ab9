package app

import (
	"flag"

	"github.com/resonance-im/resonance/internal/route"
)

// watchStore returns the presence watch store, next to the routes: in Redis
// when routes are (logic and task instances then share it), in process
// otherwise.
func (s *System) watchStore() route.Watches {
	if s.rdb == nil {
		return route.NewMemoryWatches(0)
	}
	return route.NewRedisWatches(s.rdb, s.cfg.Prefix+":", 0)
}

// bindEphemeral defines the flags of typing and presence.
func bindEphemeral(fs *flag.FlagSet, c *Config, role Role) {
	if role.Has(RoleLogic) {
		fs.IntVar(&c.Logic.Ephemeral.TypingMaxMembers, "typing-max-members", 0,
			"largest conversation whose typing events are forwarded (default 100)")
		limitFlag(fs, &c.Logic.Ephemeral.TypingLimit, "typing-limit",
			"typing events forwarded per user, conversation and state (default 1/2s)")
	}
	if role.Has(RoleTask) {
		fs.DurationVar(&c.Task.PresenceWindow, "presence-window", 0,
			"how long presence changes of a user are coalesced before watchers are told "+
				"(default 2s)")
		fs.DurationVar(&c.Task.PresenceRecheck, "presence-recheck", 0,
			"period of re-checking users announced online, to notice lapsed routes "+
				"(default 1m; negative: never)")
	}
}
