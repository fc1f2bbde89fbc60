// SPDX-License-Identifier: GPL-2.0-only
// C reference for `kvmsim bench`: the same lock-free walk of the same page-table
// arena as PageTable.lookupLocklessSlot, over the same liburcu.
#ifndef KVMSIM_BENCHC_H
#define KVMSIM_BENCHC_H
#include <stdint.h>

/// Walks `n` pages (`pages[i % npages]`), each inside its own
/// urcu_memb_read_lock()/unlock(), the way the Swift reader does; returns a sum
/// of the leaf entries found (so the work cannot be optimised away).
/// `stop`: the walk ends early when *stop becomes nonzero; `*done` gets the count.
uint64_t kvmsim_bench_c_walk(const uint64_t *words, const uint64_t *state, int levels, int bits,
                             const uint32_t *pages, uint64_t npages, const volatile int *stop, uint64_t *done);

/// prctl(PR_SET_TIMERSLACK): how late the kernel may wake the calling thread from
/// a timed sleep (default 50 us), in nanoseconds. (prctl is variadic: not callable from Swift.)
void kvmsim_bench_set_timer_slack(unsigned long ns);
#endif
