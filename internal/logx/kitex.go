package logx

import (
	"bytes"
	"strings"
	"time"

	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/rs/zerolog"
)

// RouteKitex sends Kitex's own log lines through log, as structured events
// with component=kitex, and drops those below warn: Kitex logs every listen
// and shutdown step at info, which would break the one-line-per-event rule.
// Kitex's logger is process-wide, so the last call wins.
//
// Kitex warns once per failed call and retry, so a dependency that is down
// would flood the log (a tester counted 3,300 lines from one gateway while
// one logic instance was stopped): lines pass in bursts of kitexBurst per
// kitexPeriod; the metrics count every failure anyway.
func RouteKitex(log zerolog.Logger) {
	klog.SetLevel(klog.LevelWarn)
	sampled := log.With().Str("component", "kitex").Logger().
		Sample(&zerolog.BurstSampler{Burst: kitexBurst, Period: kitexPeriod})
	klog.SetOutput(kitexWriter{log: sampled})
}

const (
	kitexBurst  = 10
	kitexPeriod = 10 * time.Second
)

type kitexWriter struct {
	log zerolog.Logger
}

// Write receives one formatted Kitex line, "date time file:line: [Level] text".
func (w kitexWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := zerolog.WarnLevel
	if i := strings.Index(line, "] "); i >= 0 {
		if j := strings.LastIndex(line[:i], "["); j >= 0 {
			if strings.EqualFold(line[j+1:i], "error") || strings.EqualFold(line[j+1:i], "fatal") {
				level = zerolog.ErrorLevel
			}
			line = line[i+2:]
		}
	}
	w.log.WithLevel(level).Msg(line)
	return len(p), nil
}
