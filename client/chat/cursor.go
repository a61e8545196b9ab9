package chat

// cursor records which seqs of one conversation have been printed, so that a
// message reaching us twice (a push and a catch-up sync, or our own send's
// ack and its push) prints once, and so that catch-up knows where to start.
type cursor struct {
	conv string
	// upTo is the highest seq such that every seq up to it was printed.
	upTo int64
	// ahead holds printed seqs above upTo+1 that arrived before a gap was
	// filled; it empties as upTo advances.
	ahead map[int64]bool
}

func newCursor(conv string) cursor {
	return cursor{conv: conv, ahead: make(map[int64]bool)}
}

// mark records seq and reports whether it was new.
func (c *cursor) mark(seq int64) bool {
	if seq <= c.upTo || c.ahead[seq] {
		return false
	}
	if seq != c.upTo+1 {
		c.ahead[seq] = true
		return true
	}
	c.upTo = seq
	for c.ahead[c.upTo+1] {
		delete(c.ahead, c.upTo+1)
		c.upTo++
	}
	return true
}
