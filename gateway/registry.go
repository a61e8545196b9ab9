package gateway

import (
	"sync"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

const registryShards = 64

// registry maps the ids of logged-in connections to them. It is sharded so
// that pushes, logins and closes on different connections rarely contend.
type registry struct {
	shards [registryShards]registryShard
}

type registryShard struct {
	mu    sync.RWMutex
	conns map[int64]*conn
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.shards {
		r.shards[i].conns = make(map[int64]*conn)
	}
	return r
}

func (r *registry) shard(id int64) *registryShard {
	return &r.shards[uint64(id)%registryShards]
}

func (r *registry) add(c *conn) {
	s := r.shard(c.id)
	s.mu.Lock()
	s.conns[c.id] = c
	s.mu.Unlock()
}

func (r *registry) remove(id int64) {
	s := r.shard(id)
	s.mu.Lock()
	delete(s.conns, id)
	s.mu.Unlock()
}

// get returns the connection with id, or nil.
func (r *registry) get(id int64) *conn {
	s := r.shard(id)
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	return c
}

// appendSessions appends the session of every registered connection to dst.
// The sessions are shared and read-only.
func (r *registry) appendSessions(dst []*logicrpc.Session) []*logicrpc.Session {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		for _, c := range s.conns {
			if sess := c.session.Load(); sess != nil {
				dst = append(dst, sess)
			}
		}
		s.mu.RUnlock()
	}
	return dst
}
