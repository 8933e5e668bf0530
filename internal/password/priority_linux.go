package password

import "syscall"

// lowerThreadPriority makes the calling OS thread the first to yield the
// CPU (nice 19). On Linux nice values are per thread. The main thread is
// left alone: the runtime never lets it exit, so its priority would stick
// (and tools report a process's nice value from it).
func lowerThreadPriority() {
	tid := syscall.Gettid()
	if tid == syscall.Getpid() {
		return
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
}
