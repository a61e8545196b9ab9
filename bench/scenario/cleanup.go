package scenario

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver of MySQLDSN
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/internal/mq"
)

// ChaosServices are the shared services the chaos cluster runs against.
type ChaosServices struct {
	// MySQLDSN is a go-sql-driver DSN; default
	// root@tcp(127.0.0.1:3306)/test?parseTime=true.
	MySQLDSN string
	// RedisAddr defaults to 127.0.0.1:6379.
	RedisAddr string
	// NATSURL defaults to nats://127.0.0.1:4222.
	NATSURL string
}

func (s ChaosServices) withDefaults() ChaosServices {
	if s.MySQLDSN == "" {
		s.MySQLDSN = "root@tcp(127.0.0.1:3306)/test?parseTime=true"
	}
	if s.RedisAddr == "" {
		s.RedisAddr = "127.0.0.1:6379"
	}
	if s.NATSURL == "" {
		s.NATSURL = "nats://127.0.0.1:4222"
	}
	return s
}

// cleanupTimeout bounds the whole cleanup, which also runs after failures.
const cleanupTimeout = 15 * time.Second

// cleanup removes what a run under prefix left in the services: its tables,
// its JetStream streams (events and task leases) and its Redis keys. It
// tries all of them and joins the errors.
func cleanup(s ChaosServices, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	names := mq.NewNames(prefix)
	return errors.Join(dropTables(ctx, s.MySQLDSN, prefix+"_"),
		deleteStream(ctx, s.NATSURL, names.Stream),
		deleteStream(ctx, s.NATSURL, names.LeaseStream()),
		deleteKeys(ctx, s.RedisAddr, prefix+":"))
}

func dropTables(ctx context.Context, dsn, prefix string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return fmt.Errorf("chaos: cleanup tables: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables"+
		" WHERE table_schema = DATABASE() AND table_name LIKE ?", prefix+"%")
	if err != nil {
		return fmt.Errorf("chaos: cleanup tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	var errs []error
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TABLE `"+n+"`"); err != nil {
			errs = append(errs, fmt.Errorf("chaos: drop table %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func deleteStream(ctx context.Context, url, stream string) error {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("chaos: cleanup stream: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("chaos: cleanup stream: %w", err)
	}
	err = js.DeleteStream(ctx, stream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("chaos: delete stream %s: %w", stream, err)
	}
	return nil
}

// deleteKeys deletes the keys under prefix, a scan page at a time.
func deleteKeys(ctx context.Context, addr, prefix string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("chaos: scan keys %s*: %w", prefix, err)
	}
	if len(keys) == 0 {
		return nil
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("chaos: delete %d keys %s*: %w", len(keys), prefix, err)
	}
	return nil
}
