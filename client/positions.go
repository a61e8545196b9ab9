package client

import "sync"

// PositionStore keeps what a Session has handed to its application, so that
// an app that persists it resumes after a restart without repeating or
// skipping messages. A Session calls it from several goroutines, so it must
// be safe for concurrent use; calls should return quickly, since delivery
// waits on them (Position, and SetPosition of a start, are called under the
// Session's lock). A store that cannot persist keeps its own error
// handling: the Session treats every call as successful.
type PositionStore interface {
	// Position returns the highest seq of convID handed to the application
	// (every seq up to it was), and false when the conversation is unknown.
	Position(convID string) (seq int64, ok bool)
	// SetPosition records that every seq of convID up to seq was handed
	// over, or passed over where StartAtLatest started the conversation.
	// seq never decreases for a conversation.
	SetPosition(convID string, seq int64)
	// Conversations lists the conversations with a position, used to resume
	// from a server without SYNC_CONVS.
	Conversations() []string
	// Cursor returns the SYNC_CONVS cursor of the last completed resume, ""
	// before the first.
	Cursor() string
	// SetCursor records the cursor of a completed resume, once every
	// message it fetched was handed over (recorded with SetPosition). It is
	// called with the Session's lock held, so it must not call back into
	// the Session.
	SetCursor(cursor string)
}

// StartStore is a PositionStore that also keeps where the device started,
// for SessionConfig.StartAtLatest: the server's time at the first login of
// the first Session on the store. A later Session on it hands over what was
// stored since then, in a conversation that began while the app was closed
// as in one it knew; without it each Session starts at its own login, and a
// conversation new to the device starts at its newest message.
type StartStore interface {
	PositionStore
	// Start returns the recorded start, Unix milliseconds, and false before
	// the first Session recorded one.
	Start() (ms int64, ok bool)
	// SetStart records the start; a Session calls it when Start reports
	// none.
	SetStart(ms int64)
}

// MemoryPositions is the default PositionStore: it lives as long as the
// process, so a Session resumes over reconnects but a new process starts
// from the positions the server kept for the device (see
// SessionConfig.StartAtLatest). Safe for concurrent use.
type MemoryPositions struct {
	mu     sync.Mutex
	seqs   map[string]int64
	cursor string
	start  int64 // 0: none recorded
}

// NewMemoryPositions returns an empty store.
func NewMemoryPositions() *MemoryPositions {
	return &MemoryPositions{seqs: make(map[string]int64)}
}

// Position implements PositionStore.
func (p *MemoryPositions) Position(convID string) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq, ok := p.seqs[convID]
	return seq, ok
}

// SetPosition implements PositionStore.
func (p *MemoryPositions) SetPosition(convID string, seq int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seqs[convID] = max(p.seqs[convID], seq)
}

// Conversations implements PositionStore.
func (p *MemoryPositions) Conversations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	convs := make([]string, 0, len(p.seqs))
	for c := range p.seqs {
		convs = append(convs, c)
	}
	return convs
}

// Cursor implements PositionStore.
func (p *MemoryPositions) Cursor() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cursor
}

// SetCursor implements PositionStore.
func (p *MemoryPositions) SetCursor(cursor string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cursor = cursor
}

// Start implements StartStore.
func (p *MemoryPositions) Start() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.start, p.start != 0
}

// SetStart implements StartStore.
func (p *MemoryPositions) SetStart(ms int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = ms
}
