package app

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/task"
)

// usageOf returns the help text of flag name in role's flag set.
func usageOf(t *testing.T, role Role, name string) string {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Bind(fs, role)
	f := fs.Lookup(name)
	if f == nil {
		t.Fatalf("%s has no --%s", role, name)
	}
	return f.Usage
}

// TestBind_HelpFitsTheRole: `resonance ROLE -h` describes what that role
// does with each flag, not what another role or all does.
func TestBind_HelpFitsTheRole(t *testing.T) {
	cases := []struct {
		role     Role
		flag     string
		want     string   // in the help
		dontWant []string // not in it
	}{
		{role: RoleGateway, flag: "data-dir", want: "not used",
			dontWant: []string{"NATS", "SQLite", "key"}},
		{role: RoleTask, flag: "data-dir", want: "not used", dontWant: []string{"NATS", "SQLite"}},
		{role: RoleLogic, flag: "data-dir", want: "SQLite", dontWant: []string{"NATS"}},
		{role: RoleAll, flag: "data-dir", want: "embedded NATS"},
		{role: RoleAll, flag: "log-format", want: "default console", dontWant: []string{"json)"}},
		{role: RoleGateway, flag: "log-format", want: "default json",
			dontWant: []string{"console)"}},
		{role: RoleLogic, flag: "log-format", want: "default json"},
		{role: RoleTask, flag: "log-format", want: "default json"},
		{role: RoleTask, flag: "nats-url", want: "required", dontWant: []string{"embeds"}},
		{role: RoleLogic, flag: "redis-addr", want: "required",
			dontWant: []string{"in process", "registry"}},
		{role: RoleGateway, flag: "prefix", want: "Redis", dontWant: []string{"NATS"}},
	}
	for _, tc := range cases {
		usage := usageOf(t, tc.role, tc.flag)
		if !strings.Contains(usage, tc.want) {
			t.Errorf("%s --%s: %q, want it to say %q", tc.role, tc.flag, usage, tc.want)
		}
		for _, no := range tc.dontWant {
			if strings.Contains(usage, no) {
				t.Errorf("%s --%s: %q says %q", tc.role, tc.flag, usage, no)
			}
		}
	}
}

// TestProtocolDoc_LimitsNameFlags: each row of the protocol document's
// Limits table names the flags that change the limit, flags the command
// has, or says it has none.
func TestProtocolDoc_LimitsNameFlags(t *testing.T) {
	raw, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, limits, ok := strings.Cut(string(raw), "\n## Limits\n")
	if !ok {
		t.Fatal("no Limits section in docs/protocol.md")
	}
	flags := roleFlags(RoleAll)
	flagRe := regexp.MustCompile("^`--([a-z0-9-]+)`")
	// The flags that change what a client meets: each must have its row.
	named := map[string]bool{}
	for _, f := range []string{"max-body", "max-content", "max-group-members", "recall-window",
		"edit-window", "login-timeout", "heartbeat-interval", "heartbeat-timeout",
		"login-addr-limit", "login-account-limit", "register-addr-limit", "typing-limit",
		"typing-max-members", "max-pending", "gateway-workers", "frame-rate",
		"outbound-high-water", "max-conns", "accept-rate", "accept-addr-rate", "token-ttl",
		"refresh-ttl", "message-search-limit", "pin-limit"} {
		named[f] = false
	}
	rows := 0
	for _, line := range strings.Split(limits, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || strings.HasPrefix(line, "|---") ||
			strings.TrimSpace(cells[3]) == "flag" {
			continue
		}
		rows++
		column := strings.TrimSpace(cells[3])
		if column == "—" {
			continue
		}
		for _, part := range strings.Split(column, ", ") {
			m := flagRe.FindStringSubmatch(part)
			if m == nil || !flags[m[1]] {
				t.Errorf("limit %q: %q is not a flag of resonance all",
					strings.TrimSpace(cells[1]), part)
				continue
			}
			named[m[1]] = true
		}
	}
	for f, ok := range named {
		if !ok {
			t.Errorf("no row of the Limits table names --%s", f)
		}
	}
	if rows < 20 {
		t.Fatalf("read %d rows of the Limits table; the table's layout changed", rows)
	}
}

// TestOperationsDoc_QuotesNoMeasurements: measured rates go stale with each
// release; the operations document points to the README's performance
// section instead of copying them.
func TestOperationsDoc_QuotesNoMeasurements(t *testing.T) {
	raw, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rate := regexp.MustCompile(`\d[\d,.]*\s+(?:[\w/]+\s+){0,2}(?:frames|deliveries|messages|` +
		`msgs|logins|writes)(?:\s+\w+){0,3}?\s*(?:per\s+second|/s)`)
	if m := rate.FindAllString(string(raw), -1); len(m) > 0 {
		t.Fatalf("docs/operations.md quotes measured rates: %q", m)
	}
	if !strings.Contains(string(raw), "README.md#performance") {
		t.Fatal("docs/operations.md does not point to the README's performance section")
	}
}

// TestProtocolDoc_RateLimitedNamesItsRequests: the Errors table says which
// requests RATE_LIMITED answers, as logic returns it.
func TestProtocolDoc_RateLimitedNamesItsRequests(t *testing.T) {
	raw, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "| 1008 | `RATE_LIMITED` |") {
			row = line
		}
	}
	for _, op := range []string{"LOGIN", "CHANGE_PASSWORD", "REGISTER", "TYPING", "GET_PRESENCE",
		"WATCH_PRESENCE", "SEARCH_USERS", "SEARCH_MESSAGES", "PIN"} {
		if !strings.Contains(row, "`"+op+"`") {
			t.Errorf("the RATE_LIMITED row does not name %s: %q", op, row)
		}
	}
}

// TestReadme_WebhookBodyIsNotification: the README's example webhook body
// has every field of task.Notification and no other, and the section names
// the headers task sends, so an operator writing a receiver from it reads
// what arrives.
func TestReadme_WebhookBodyIsNotification(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	_, after, ok := strings.Cut(readme, "The body (`task.Notification`):\n\n```json\n")
	example, _, closed := strings.Cut(after, "```")
	if !ok || !closed {
		t.Fatal("README has no JSON example after \"The body (`task.Notification`):\"")
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(example), &body); err != nil {
		t.Fatalf("README's webhook body is not JSON: %v\n%s", err, example)
	}
	fields := reflect.TypeFor[task.Notification]()
	for i := range fields.NumField() {
		name, _, _ := strings.Cut(fields.Field(i).Tag.Get("json"), ",")
		if _, ok := body[name]; !ok {
			t.Errorf("README's webhook body lacks %q", name)
		}
		delete(body, name)
	}
	for name := range body {
		t.Errorf("README's webhook body has %q, which task.Notification does not", name)
	}
	for _, h := range []string{task.HeaderSignature, task.HeaderTimestamp, task.HeaderID} {
		if !strings.Contains(readme, "`"+h) {
			t.Errorf("README does not name the webhook header %s", h)
		}
	}
}
