// SPDX-License-Identifier: GPL-2.0-only
// C shim over liburcu-memb and the C11 atomics the model needs.
//
// Swift imports static inline functions but not function-like macros
// (rcu_dereference, rcu_assign_pointer, the _LGPL_SOURCE read-lock names),
// so this header wraps them. Everything here is a thin, inlinable wrapper.
#ifndef KVMSIM_CURCU_H
#define KVMSIM_CURCU_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-memb.h>
#include <stdint.h>
#include <stdbool.h>
#include <sched.h>

// ---- liburcu-memb ---------------------------------------------------------

static inline void kvmsim_urcu_register_thread(void) { urcu_memb_register_thread(); }
static inline void kvmsim_urcu_unregister_thread(void) { urcu_memb_unregister_thread(); }
static inline void kvmsim_urcu_read_lock(void) { urcu_memb_read_lock(); }
static inline void kvmsim_urcu_read_unlock(void) { urcu_memb_read_unlock(); }
static inline void kvmsim_urcu_synchronize(void) { urcu_memb_synchronize_rcu(); }
static inline void kvmsim_urcu_barrier(void) { urcu_memb_barrier(); }
static inline int kvmsim_urcu_read_ongoing(void) { return urcu_memb_read_ongoing(); }

/// rcu_dereference() on a pointer-sized slot.
static inline void *kvmsim_rcu_dereference(void *const *slot) {
    return rcu_dereference(*(void **)slot);
}
/// rcu_assign_pointer() on a pointer-sized slot.
static inline void kvmsim_rcu_assign_pointer(void **slot, void *value) {
    rcu_assign_pointer(*slot, value);
}

/// call_rcu() with a plain (context, function) pair; the shim allocates the
/// rcu_head and frees it after calling fn(ctx) on liburcu's call_rcu thread.
void kvmsim_urcu_call_rcu(void *ctx, void (*fn)(void *ctx));

// ---- atomics on 64-bit words (page-table entries, counters) ---------------

static inline uint64_t kvmsim_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t kvmsim_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void kvmsim_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void kvmsim_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t kvmsim_exchange(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static inline bool kvmsim_cas(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint64_t kvmsim_fetch_add(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline uint64_t kvmsim_fetch_or(uint64_t *p, uint64_t v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); }
static inline uint64_t kvmsim_fetch_and(uint64_t *p, uint64_t v) { return __atomic_fetch_and(p, v, __ATOMIC_ACQ_REL); }
/// smp_mb(), smp_rmb(), smp_wmb(): all a full fence here.
static inline void kvmsim_smp_mb(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void kvmsim_cpu_relax(void) { sched_yield(); }

/// A cheap timestamp for ordering events across CPUs while recording a parallel
/// run: the TSC on x86-64 (invariant and synchronised across cores on the
/// machines kvmsim runs on), else CLOCK_MONOTONIC_RAW in nanoseconds.
#include <time.h>
static inline uint64_t kvmsim_timestamp(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

#endif
