package auth

import "syscall"

// lowerThreadPriority makes the calling OS thread the first to yield the
// CPU (nice 19). On Linux nice values are per thread.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
