package scenario

import (
	"fmt"
	"sync"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// ledger checks the chaos promise per device: every acked message of the
// device's user's conversations reaches the device exactly once, and each
// conversation's seqs arrive increasing. One lock for all devices: it is
// taken once per handed-over message, cheap next to its network path.
type ledger struct {
	mu sync.Mutex
	// byUser lists the acked msg ids that each user's devices must get.
	byUser  map[int64][]int64
	acked   int
	devices []*deviceLog
}

// deviceLog is what one device was handed.
type deviceLog struct {
	name      string
	user      int64
	got       map[int64]int // msg id -> times handed over
	lastSeq   map[string]int64
	reordered int
}

// DeviceTally is the outcome at one device.
type DeviceTally struct {
	Device     string
	Expected   int
	Delivered  int
	Lost       int
	Duplicated int
	Reordered  int
}

// OK reports whether the device got everything once, in order.
func (d DeviceTally) OK() bool {
	return d.Lost == 0 && d.Duplicated == 0 && d.Reordered == 0
}

func (d DeviceTally) String() string {
	return fmt.Sprintf("%s: expected=%d delivered=%d lost=%d duplicated=%d reordered=%d",
		d.Device, d.Expected, d.Delivered, d.Lost, d.Duplicated, d.Reordered)
}

func newLedger() *ledger {
	return &ledger{byUser: make(map[int64][]int64)}
}

// addDevice registers a device of user and returns its index.
func (l *ledger) addDevice(name string, user int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.devices = append(l.devices, &deviceLog{name: name, user: user,
		got: make(map[int64]int), lastSeq: make(map[string]int64)})
	return len(l.devices) - 1
}

// ackedMsg records an acked message between users from and to.
func (l *ledger) ackedMsg(msgID, from, to int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked++
	l.byUser[from] = append(l.byUser[from], msgID)
	l.byUser[to] = append(l.byUser[to], msgID)
}

// handed records that device dev was handed m.
func (l *ledger) handed(dev int, m *common.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devices[dev]
	d.got[m.MsgId]++
	if d.got[m.MsgId] > 1 {
		return // a duplicate is counted as one, not also as a reorder
	}
	if m.Seq <= d.lastSeq[m.ConvId] {
		d.reordered++
	}
	d.lastSeq[m.ConvId] = max(m.Seq, d.lastSeq[m.ConvId])
}

// complete reports whether every device has every acked message due to it.
func (l *ledger) complete() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.devices {
		for _, id := range l.byUser[d.user] {
			if d.got[id] == 0 {
				return false
			}
		}
	}
	return true
}

// tally returns the outcome per device and the number of acked messages.
func (l *ledger) tally() ([]DeviceTally, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]DeviceTally, 0, len(l.devices))
	for _, d := range l.devices {
		t := DeviceTally{Device: d.name, Expected: len(l.byUser[d.user]),
			Reordered: d.reordered}
		for _, id := range l.byUser[d.user] {
			if d.got[id] == 0 {
				t.Lost++
			} else {
				t.Delivered++
			}
		}
		for _, n := range d.got {
			t.Duplicated += max(n-1, 0)
		}
		out = append(out, t)
	}
	return out, l.acked
}
