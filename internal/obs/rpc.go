package obs

import (
	"context"
	"errors"
	"time"

	"github.com/cloudwego/kitex/pkg/endpoint"
	"github.com/cloudwego/kitex/pkg/rpcinfo"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// latencyBuckets span 100 µs to about 6.5 s, the range of an RPC or a query.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 4, 9)

// RPCClientMiddleware returns a Kitex client middleware that observes each
// call's latency in name (e.g. resonance_gateway_logic_call_seconds) by
// method and outcome. Methods come from the IDL, so the label is bounded.
func RPCClientMiddleware(reg prometheus.Registerer, name, help string) endpoint.Middleware {
	return rpcMiddleware(reg, name, help)
}

// RPCServerMiddleware is RPCClientMiddleware for a Kitex server: the
// latency of each handled call, by method and outcome.
func RPCServerMiddleware(reg prometheus.Registerer, name, help string) endpoint.Middleware {
	return rpcMiddleware(reg, name, help)
}

func rpcMiddleware(reg prometheus.Registerer, name, help string) endpoint.Middleware {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: latencyBuckets,
	}, []string{"method", "outcome"})
	reg.MustRegister(hist)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req, resp any) error {
			start := time.Now()
			err := next(ctx, req, resp)
			method := "unknown"
			if ri := rpcinfo.GetRPCInfo(ctx); ri != nil && ri.To() != nil {
				method = ri.To().Method()
			}
			hist.WithLabelValues(method, outcome(err)).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// outcome labels a call's result: ok, refused (a business error the IDL
// declares: a wrong password, a non-member) or error (a failure).
func outcome(err error) string {
	var biz *common.BizError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &biz):
		return "refused"
	}
	return "error"
}

// dbStartKey is where the query start time waits between GORM callbacks.
const dbStartKey = "resonance:obs:start"

// InstrumentDB registers GORM callbacks that observe every statement's
// latency in resonance_db_query_seconds by operation (create, query,
// update, delete, row, raw).
func InstrumentDB(db *gorm.DB, reg prometheus.Registerer) error {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "resonance_db_query_seconds",
		Help:    "Latency of one database statement, by operation.",
		Buckets: latencyBuckets,
	}, []string{"op"})
	if err := reg.Register(hist); err != nil {
		return err
	}
	plugin := &dbPlugin{ops: make(map[string]prometheus.Observer)}
	for _, op := range []string{"create", "query", "update", "delete", "row", "raw"} {
		plugin.ops[op] = hist.WithLabelValues(op)
	}
	if err := db.Use(plugin); err != nil {
		return err
	}
	before := func(tx *gorm.DB) { tx.InstanceSet(dbStartKey, time.Now()) }
	after := func(op string) func(*gorm.DB) {
		obs := hist.WithLabelValues(op)
		return func(tx *gorm.DB) {
			if v, ok := tx.InstanceGet(dbStartKey); ok {
				obs.Observe(time.Since(v.(time.Time)).Seconds())
			}
		}
	}
	cb := db.Callback()
	type hooks struct {
		op            string
		before, after func(string, func(*gorm.DB)) error
	}
	for _, h := range []hooks{
		{"create", cb.Create().Before("gorm:create").Register,
			cb.Create().After("gorm:create").Register},
		{"query", cb.Query().Before("gorm:query").Register,
			cb.Query().After("gorm:query").Register},
		{"update", cb.Update().Before("gorm:update").Register,
			cb.Update().After("gorm:update").Register},
		{"delete", cb.Delete().Before("gorm:delete").Register,
			cb.Delete().After("gorm:delete").Register},
		{"row", cb.Row().Before("gorm:row").Register, cb.Row().After("gorm:row").Register},
		{"raw", cb.Raw().Before("gorm:raw").Register, cb.Raw().After("gorm:raw").Register},
	} {
		if err := h.before("obs:before_"+h.op, before); err != nil {
			return err
		}
		if err := h.after("obs:after_"+h.op, after(h.op)); err != nil {
			return err
		}
	}
	return nil
}

// dbPlugin keeps InstrumentDB's observers on the instrumented handle, for
// ObserveDB.
type dbPlugin struct {
	ops map[string]prometheus.Observer // by op; written before first use only
}

const dbPluginName = "resonance:obs"

func (*dbPlugin) Name() string                 { return dbPluginName }
func (*dbPlugin) Initialize(db *gorm.DB) error { return nil }

// ObserveDB records in resonance_db_query_seconds, under op, a statement
// that started at start and ran on db past GORM's callbacks (a hot path's
// hand-written statement). It does nothing unless InstrumentDB instrumented
// db or the handle db was derived from.
func ObserveDB(db *gorm.DB, op string, start time.Time) {
	if p, ok := db.Config.Plugins[dbPluginName].(*dbPlugin); ok {
		if o := p.ops[op]; o != nil {
			o.Observe(time.Since(start).Seconds())
		}
	}
}
