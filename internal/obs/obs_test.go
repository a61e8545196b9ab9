package obs

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"gorm.io/gorm"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServer_Endpoints(t *testing.T) {
	var depDown atomic.Bool
	s, err := Listen(Options{Addr: "127.0.0.1:0", Checks: map[string]Check{
		"db": func(context.Context) error {
			if depDown.Load() {
				return errors.New("down")
			}
			return nil
		},
	}}, NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	base := "http://" + s.Addr().String()

	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz = %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before SetReady = %d, want 503", code)
	}
	s.SetReady(true)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz = %d, want 200", code)
	}
	depDown.Store(true)
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "db") {
		t.Fatalf("readyz with a failing dependency = %d %q", code, body)
	}
	code, body = get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics = %d, missing go_goroutines", code)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("pprof served without the flag: %d", code)
	}
}

func TestInstrumentDB_ObservesStatements(t *testing.T) {
	db, err := gorm.Open(sqlite.Open(t.TempDir()+"/t.db"), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := InstrumentDB(db, reg); err != nil {
		t.Fatal(err)
	}
	type row struct{ ID int64 }
	if err := db.AutoMigrate(&row{}); err != nil {
		t.Fatal(err)
	}
	db.Create(&row{ID: 1})
	var got []row
	db.Find(&got)
	n, err := testutil.GatherAndCount(reg, "resonance_db_query_seconds")
	if err != nil || n < 2 {
		t.Fatalf("db latency series = %d (%v), want create and query at least", n, err)
	}
}

func TestObserveDB_StatementsPastGORM(t *testing.T) {
	db, err := gorm.Open(sqlite.Open(t.TempDir()+"/t.db"), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ObserveDB(db, "update", time.Now()) // not instrumented: nothing, no panic
	reg := prometheus.NewRegistry()
	if err := InstrumentDB(db, reg); err != nil {
		t.Fatal(err)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		ObserveDB(tx, "update", time.Now().Add(-time.Millisecond))
		ObserveDB(tx, "no such op", time.Now())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if counts["update"] != 1 || counts["create"] != 0 || len(counts) != 6 {
		t.Fatalf("samples by op %v, want the one update", counts)
	}
}

// pprof answers a client on this host and refuses one from elsewhere, as a
// listener on every interface would let one reach it.
func TestServer_PprofOnlyFromThisHost(t *testing.T) {
	s, err := Listen(Options{Addr: "127.0.0.1:0", Pprof: true}, NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if code, _ := get(t, "http://"+s.Addr().String()+"/debug/pprof/cmdline"); code != 200 {
		t.Fatalf("pprof from loopback: %d, want 200", code)
	}
	for _, from := range []string{"10.0.0.5:40000", "[2001:db8::1]:40000", "bogus"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/debug/pprof/cmdline", nil)
		r.RemoteAddr = from
		s.mux.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden {
			t.Errorf("pprof from %s: %d %q, want 403", from, w.Code, w.Body.String())
		}
	}
}
