//go:build !linux

package password

// lowerThreadPriority does nothing where threads have no priority of their
// own that an unprivileged process may set.
func lowerThreadPriority() {}
