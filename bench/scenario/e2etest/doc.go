// Package e2etest runs the measuring scenarios of package scenario (echo,
// chat, push, group, idle) at a tiny size against the whole system started
// in-process. It is its own package because app's tests import scenario:
// scenario's own tests cannot import app without a cycle. It has no code
// outside tests.
package e2etest
