package logx

import (
	"bytes"
	"strings"

	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/rs/zerolog"
)

// RouteKitex sends Kitex's own log lines through log, as structured events
// with component=kitex, and drops those below warn: Kitex logs every listen
// and shutdown step at info, which would break the one-line-per-event rule.
// Kitex's logger is process-wide, so the last call wins.
func RouteKitex(log zerolog.Logger) {
	klog.SetLevel(klog.LevelWarn)
	klog.SetOutput(kitexWriter{log: log.With().Str("component", "kitex").Logger()})
}

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
