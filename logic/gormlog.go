package logic

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// slowQuery is the duration past which a query is logged at debug.
const slowQuery = 200 * time.Millisecond

// quietLogger keeps GORM silent: errors surface through the returned error
// and are logged by the handler with the ids involved, so the only output here
// is slow queries at debug, through the zerolog logger in the context (none
// when the context carries none; Service puts its own there).
type quietLogger struct{}

func (l quietLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }
func (quietLogger) Info(context.Context, string, ...any)               {}
func (quietLogger) Warn(context.Context, string, ...any)               {}
func (quietLogger) Error(context.Context, string, ...any)              {}

// Trace logs a query that took longer than slowQuery, without its values.
func (quietLogger) Trace(ctx context.Context, begin time.Time,
	sql func() (string, int64), err error) {
	elapsed := time.Since(begin)
	if elapsed < slowQuery || errors.Is(err, gorm.ErrRecordNotFound) {
		return
	}
	stmt, rows := sql()
	zerolog.Ctx(ctx).Debug().Dur("elapsed", elapsed).Int64("rows", rows).
		Str("sql", truncate(stmt, 200)).Msg("slow query")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
