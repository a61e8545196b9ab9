package app

import "github.com/resonance-im/resonance/internal/route"

// watchStore returns the presence watch store, next to the routes: in Redis
// when routes are (logic and task instances then share it), in process
// otherwise.
func (s *System) watchStore() route.Watches {
	if s.rdb == nil {
		return route.NewMemoryWatches(0)
	}
	return route.NewRedisWatches(s.rdb, s.cfg.Prefix+":", 0)
}
