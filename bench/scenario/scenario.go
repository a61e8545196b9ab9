// Package scenario holds the load and correctness scenarios of the bench
// tool, callable in-process (end-to-end tests) or from `go run ./bench`.
// Each scenario registers its own users under a unique name prefix so that
// runs never collide on one server.
package scenario

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/resonance-im/resonance/client"
)

// Sentinel errors of the scenarios.
var (
	// ErrCheckFailed means the scenario ran but its result broke a delivery
	// guarantee; the result says which.
	ErrCheckFailed = errors.New("scenario: check failed")
	// ErrBadConfig means the configuration cannot run. Its message names a
	// field by the bench flag that sets it (--users for Users), since the
	// bench prints it as the answer to its command line.
	ErrBadConfig = errors.New("scenario: bad config")

	// errRoleDown means a role of the chaos cluster did not come up.
	errRoleDown = errors.New("chaos: role not running")
	// errWorkerFailed means a client worker of ConnectSpread failed or
	// exited early.
	errWorkerFailed = errors.New("connect: client worker failed")
)

// refuseNegative returns ErrBadConfig naming the numeric fields of cfg, a
// scenario's config struct, that are below zero: its int, duration and
// float fields, and those of its nested structs of this package (another
// package's, such as client.Options, check their own). A zero field takes
// its default, and a negative one used to take it too, silently running
// with the default a caller did not ask for.
func refuseNegative(scenario string, cfg any) error {
	var negative []string
	for _, f := range numericFields(reflect.ValueOf(cfg), "") {
		if f.value.CanFloat() && f.value.Float() < 0 || f.value.CanInt() && f.value.Int() < 0 {
			negative = append(negative, f.path)
		}
	}
	if len(negative) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: negative %s", ErrBadConfig, scenario,
		strings.Join(negative, ", "))
}

// numericField is a numeric field of a config and its path
// ("Cluster.Gateways").
type numericField struct {
	path  string
	value reflect.Value
}

// numericFields lists the exported int, duration and float fields of the
// struct v, those of its nested structs of this package included.
func numericFields(v reflect.Value, prefix string) []numericField {
	var fields []numericField
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Float64:
			fields = append(fields, numericField{prefix + f.Name, v.Field(i)})
		case reflect.Struct:
			if f.Type.PkgPath() == v.Type().PkgPath() {
				fields = append(fields, numericFields(v.Field(i), prefix+f.Name+".")...)
			}
		}
	}
	return fields
}

// user is one registered, logged-in user of a scenario on its own connection.
type user struct {
	name string
	id   int64
	c    *client.Client
}

// uniquePrefix returns a name prefix no earlier run has used.
func uniquePrefix(scenario string) string {
	return scenario + client.NewClientMsgID()[:10] + "-"
}

// connectUsers registers and logs in n users named prefix0..prefix(n-1),
// at most parallel at a time. On error it closes what it opened.
func connectUsers(ctx context.Context, addr, prefix string, n, parallel int,
	opts client.Options) ([]*user, error) {
	users := make([]*user, n)
	// Against a server on loopback, spread the users over source addresses:
	// the server limits registrations and password logins per address, and
	// repeated runs would otherwise exhaust one address's budget.
	src, spread := newSources(), isLoopback(addr)
	err := forEach(n, parallel, func(i int) error {
		o := opts
		if spread {
			o.LocalIP = src.ip(i).String()
		}
		var err error
		users[i], err = connectUser(ctx, addr, fmt.Sprintf("%s%d", prefix, i), o)
		return err
	})
	if err != nil {
		closeUsers(users)
		return nil, err
	}
	return users, nil
}

// checkPrefix refuses a prefix whose user names (the prefix and an index
// below users) the server would refuse, before anything connects: 3-32
// bytes of letters, digits, '_', '.' and '-'.
func checkPrefix(prefix string, users int) error {
	for _, name := range []string{prefix + "0", prefix + strconv.Itoa(max(users-1, 0))} {
		if len(name) < 3 || len(name) > 32 {
			return fmt.Errorf("%w: prefix %q makes user names like %q; names are 3-32 characters",
				ErrBadConfig, prefix, name)
		}
		for i := range len(name) {
			if b := name[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' ||
				'0' <= b && b <= '9' || b == '_' || b == '.' || b == '-') {
				return fmt.Errorf("%w: prefix %q: user names hold only letters, digits, "+
					"'_', '.' and '-'", ErrBadConfig, prefix)
			}
		}
	}
	return nil
}

// password is the password of the bench's user name. It is long enough for
// the server's minimum of 8 bytes whatever the name: a name made of a short
// --prefix and an index once gave "pw-r10", which registration refused.
func password(name string) string { return "bench-pw-" + name }

func connectUser(ctx context.Context, addr, name string, opts client.Options) (*user, error) {
	c, err := client.Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	pw := password(name)
	if _, err := c.Register(ctx, name, pw); err != nil {
		_ = c.Close()
		return nil, err
	}
	resp, err := c.Login(ctx, client.LoginParams{
		Username: name, Password: pw, DeviceID: "bench", Platform: "bench",
	})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &user{name: name, id: resp.UserId, c: c}, nil
}

// forEach calls fn(i) for each i in [0, n), at most limit at a time, and
// returns their errors summarized by firstError.
func forEach(n, limit int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return firstError(errs)
}

// firstError summarizes errs by the first failure and the count, so that a
// server that is down prints one line, not one per user.
func firstError(errs []error) error {
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d users failed, first: %w", failed, len(errs), first)
}

// shutdownUsers ends the users' connections together with
// client.Client.Shutdown, giving each up to endDrain: a CLOSE the server
// sent before it read a user's end is read and recorded (collect), where
// closing outright dropped it and counted what its receiver missed as lost.
func shutdownUsers(users []*user) {
	ctx, cancel := context.WithTimeout(context.Background(), endDrain)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range users {
		if u != nil {
			wg.Go(func() { _ = u.c.Shutdown(ctx) })
		}
	}
	wg.Wait()
}

func closeUsers(users []*user) {
	for _, u := range users {
		if u != nil {
			_ = u.c.Close()
		}
	}
}

// isLoopback reports whether addr's host is a loopback IP (or localhost).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}
