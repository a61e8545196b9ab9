package client

// Tracks reports whether the Session keeps a state for convID: one of its
// messages was offered, or a listing named it. Tests wait on it to order a
// push before a listing.
func (s *Session) Tracks(convID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq.convs[convID] != nil
}
