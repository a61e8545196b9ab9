package task

import "errors"

// Sentinel errors of package task. Callers compare them with errors.Is.
var (
	// ErrBadConfig means a Config field is out of range; the wrapped message
	// names the field.
	ErrBadConfig = errors.New("task: bad config")
	// ErrMissingDeps means a required dependency (JetStream, route table or
	// a JetStream name) was not given.
	ErrMissingDeps = errors.New("task: missing dependency")
	// ErrAlreadyRunning means Run was called a second time on the same Task.
	ErrAlreadyRunning = errors.New("task: already running")
	// ErrPoison means an event can never be delivered as published (it does
	// not decode or carries no message); it goes to the dead-letter subject.
	ErrPoison = errors.New("task: poison event")

	// errClientClosed fails a push whose gateway client was dropped before
	// the push was answered: the gateway vanished, the client sat idle, or
	// task is stopping.
	errClientClosed = errors.New("gateway client closed")
	// errPushRefused is a req of a PushBatch call that the gateway refused,
	// as it would have refused the req's own Push call (a bad frame).
	errPushRefused = errors.New("gateway refused the push")
)
