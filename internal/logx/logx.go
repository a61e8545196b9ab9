// Package logx sets up zerolog the one way every role uses it.
package logx

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error"; info when empty or unknown). pretty selects the human console
// format instead of JSON lines.
func New(w io.Writer, level string, pretty bool) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if w == nil {
		w = os.Stderr
	}
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colorful(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// colorful reports whether console output to w may carry colour: w is a
// terminal and NO_COLOR is not set. Logs redirected to a file or a pipe
// stay free of escape codes.
func colorful(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
