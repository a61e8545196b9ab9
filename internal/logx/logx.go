// Package logx sets up zerolog the one way every role uses it.
package logx

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Levels names the levels ParseLevel accepts, for help texts and errors.
const Levels = "debug, info, warn or error"

// ParseLevel returns the level named by s, one of Levels in any case; empty
// is info. Anything else is an error, never a quiet fallback: a typo in
// "debug" would otherwise hide the very lines being asked for.
func ParseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "", "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("logx: unknown level %q: want %s", s, Levels)
}

// New returns a logger writing to w (stderr when nil) at level. pretty
// selects the human console format instead of JSON lines.
func New(w io.Writer, level zerolog.Level, pretty bool) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colorful(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
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
