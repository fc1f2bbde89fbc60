// SPDX-License-Identifier: GPL-2.0-only
#include "curcu.h"
#include <stdlib.h>
#include <stddef.h>

struct kvmsim_rcu_cb {
    struct rcu_head head;
    void *ctx;
    void (*fn)(void *ctx);
    int published;
};

static void kvmsim_rcu_cb_run(struct rcu_head *head) {
    struct kvmsim_rcu_cb *cb = caa_container_of(head, struct kvmsim_rcu_cb, head);
    // Pairs with the release in kvmsim_urcu_call_rcu(). liburcu's callback queue
    // orders the hand-off too, but it is not instrumented, so ThreadSanitizer
    // would not see it; this acquire/release pair makes the order visible.
    while (!__atomic_load_n(&cb->published, __ATOMIC_ACQUIRE))
        ;
    cb->fn(cb->ctx);
    free(cb);
}

void kvmsim_urcu_call_rcu(void *ctx, void (*fn)(void *ctx)) {
    struct kvmsim_rcu_cb *cb = malloc(sizeof(*cb));
    if (!cb) abort();
    cb->ctx = ctx;
    cb->fn = fn;
    __atomic_store_n(&cb->published, 1, __ATOMIC_RELEASE);
    urcu_memb_call_rcu(&cb->head, kvmsim_rcu_cb_run);
}
