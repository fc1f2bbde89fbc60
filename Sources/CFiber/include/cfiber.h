// SPDX-License-Identifier: GPL-2.0-only
// User-level context switching for the deterministic scheduler.
//
// In deterministic mode only one actor runs at a time, so every actor can run
// on one OS thread, each on a stack of its own, and a scheduling point becomes
// a user-level context switch (glibc swapcontext) instead of a futex hand-off
// between OS threads (about 5 us a step on a 2-core VM).
//
// A Swift job may be switched away from in the middle (a synchronous
// `SimEngine.point`), so the Swift runtime's thread-local state that belongs to
// the running job moves with the fiber: the concurrency runtime's active task,
// executor-tracking record and task-local fallback storage, and the core
// runtime's exclusivity access set. Nothing else in those blocks moves (their
// cached kernel thread id stays the thread's). The layout is checked at run
// time (`kvmsim_fibers_supported`, `kvmsim_fiber_check_active_task`).
//
// Sanitizers: under ThreadSanitizer each fiber is a TSan fiber
// (__tsan_switch_to_fiber); under AddressSanitizer switches are announced with
// __sanitizer_start/finish_switch_fiber. Both are found as weak symbols, so the
// same object works with and without a sanitizer runtime.
#ifndef KVMSIM_CFIBER_H
#define KVMSIM_CFIBER_H

#include <stddef.h>

typedef struct kvmsim_fiber kvmsim_fiber;

/// 1 when fibers can run Swift jobs in this process; else 0 and `reason` says why.
int kvmsim_fibers_supported(const char **reason);

/// A record for the calling OS thread's own context (no stack of its own), to
/// switch from and back to. Use it on the thread that made it only.
kvmsim_fiber *kvmsim_fiber_create_for_thread(void);

/// A fiber with its own stack (`stack_size` bytes plus a guard page) that calls
/// `entry(arg)` the first time it is switched to. When `entry` returns, the
/// fiber switches to the one set with `kvmsim_fiber_set_exit` and never runs again.
/// Returns NULL if the stack cannot be mapped.
kvmsim_fiber *kvmsim_fiber_create(size_t stack_size, void (*entry)(void *), void *arg);

/// Where a fiber goes when its entry function returns.
void kvmsim_fiber_set_exit(kvmsim_fiber *fiber, kvmsim_fiber *exit_to);

/// Saves the caller's context and runtime thread-local state into `from` and
/// resumes `to`. Returns when some fiber switches back to `from`. `from` must
/// be the context running now.
void kvmsim_fiber_switch(kvmsim_fiber *from, kvmsim_fiber *to);

/// 1 once `entry` has returned.
int kvmsim_fiber_finished(const kvmsim_fiber *fiber);

/// Frees a fiber that is not running (finished, never started, or abandoned).
void kvmsim_fiber_destroy(kvmsim_fiber *fiber);

/// Inside a running Swift task: 1 if the slot the fibers move is the runtime's
/// current-task slot (a check of the layout assumption), else 0.
int kvmsim_fiber_check_active_task(void);

/// The simulator executor the calling context runs (an opaque pointer the
/// engine sets when a thread starts and at every fiber switch). A thread-local
/// word read inline, without the call `pthread_getspecific` costs: it is read at
/// every scheduling point.
extern __thread void *kvmsim_current_executor_tls __attribute__((tls_model("initial-exec")));
static inline void *kvmsim_current_executor(void) { return kvmsim_current_executor_tls; }
static inline void kvmsim_set_current_executor(void *executor) { kvmsim_current_executor_tls = executor; }

/// Access-level scheduling: nonzero while the context running now should pass a
/// scheduling point at every access to kernel memory (set with the current
/// executor at every switch; zeroed inside scopes that must not be
/// interleaved: oracles, narration, wait conditions, the scheduler).
extern __thread int kvmsim_access_gate_tls __attribute__((tls_model("initial-exec")));
static inline int kvmsim_access_gate(void) { return kvmsim_access_gate_tls; }
static inline void kvmsim_set_access_gate(int gate) { kvmsim_access_gate_tls = gate; }

/// Nonzero while the calling thread builds a world for a long run on real
/// threads: `AtomicWords` then puts each allocation in cache lines of its own
/// (no false sharing between CPUs' words), which deterministic worlds, built
/// per schedule, do not pay for.
extern __thread int kvmsim_line_layout_tls __attribute__((tls_model("initial-exec")));
static inline int kvmsim_line_layout(void) { return kvmsim_line_layout_tls; }
static inline void kvmsim_set_line_layout(int on) { kvmsim_line_layout_tls = on; }

/// Engines in this process whose executors have store buffers (weak-memory
/// mode): while 0, a barrier or read-modify-write skips looking for one.
extern long kvmsim_store_buffer_engines;
static inline long kvmsim_store_buffers_in_use(void) { return __atomic_load_n(&kvmsim_store_buffer_engines, __ATOMIC_RELAXED); }
static inline void kvmsim_store_buffers_add(long n) { __atomic_fetch_add(&kvmsim_store_buffer_engines, n, __ATOMIC_RELAXED); }

#endif
