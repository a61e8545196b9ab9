package gateway

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/rpcerr"
)

// olderLogicRecheck is how long the gateway sends one call per request after
// logic refused a batch method as unknown, before it tries the method again:
// an upgrade of logic at the same address then gets batches within a minute.
const olderLogicRecheck = time.Minute

// olderLogic remembers that logic refused one batch method (SendRuns,
// LoginBatch, DisconnectBatch) as unknown: an older release, met during a
// rolling upgrade. It is safe for concurrent use.
type olderLogic struct {
	method, single string // the batch method, and the call sent instead
	peer           rpcerr.OlderPeer
}

// active reports whether requests go as single calls now.
func (o *olderLogic) active() bool { return o.peer.Active() }

// refused notes a refusal. The first of a recheck period is logged, however
// many workers meet it.
func (o *olderLogic) refused(log zerolog.Logger) {
	if o.peer.Refused(olderLogicRecheck) {
		log.Info().Str("method", o.method).Dur("recheck", olderLogicRecheck).
			Msgf("logic does not know %s (older release); sending it %s calls", o.method, o.single)
	}
}
