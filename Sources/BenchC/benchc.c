// SPDX-License-Identifier: GPL-2.0-only
#include "benchc.h"
#include "curcu.h"
#include <sys/prctl.h>

void kvmsim_bench_set_timer_slack(unsigned long ns) { prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }

static inline int table_valid(const uint64_t *state, uint64_t t, uint64_t gen) {
    uint64_t s = __atomic_load_n(state + t, __ATOMIC_ACQUIRE);
    return (s & 3) != 0 && (s >> 2) == gen;
}

uint64_t kvmsim_bench_c_walk(const uint64_t *words, const uint64_t *state, int levels, int bits,
                             const uint32_t *pages, uint64_t npages, const volatile int *stop, uint64_t *done) {
    const uint64_t entries = 1ull << bits, mask = entries - 1;
    uint64_t sum = 0, n = 0;
    while (!*stop) {
        for (int k = 0; k < 64; k++, n++) {
            uint64_t page = pages[n % npages], table = 0;
            urcu_memb_read_lock();
            uint64_t gen = __atomic_load_n(state, __ATOMIC_ACQUIRE) >> 2;
            for (int level = 0; level < levels; level++) {
                uint64_t idx = (page >> (bits * (levels - 1 - level))) & mask;
                uint64_t e = __atomic_load_n(words + table * entries + idx, __ATOMIC_ACQUIRE);
                if (!table_valid(state, table, gen)) break;
                if (level == levels - 1) { sum += e; break; }
                if (e == 0) break;
                table = (e >> 1) & 0x7fffffff;
                gen = e >> 32;
            }
            urcu_memb_read_unlock();
        }
    }
    *done = n;
    return sum;
}
