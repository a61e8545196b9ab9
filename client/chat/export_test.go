package chat

// SetSecretReadHook sets secretReadHook for an external test and returns
// what unsets it.
func SetSecretReadHook(hook func()) (unset func()) {
	secretReadHook = hook
	return func() { secretReadHook = nil }
}
