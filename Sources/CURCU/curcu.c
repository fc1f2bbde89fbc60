// SPDX-License-Identifier: GPL-2.0-only
#include "curcu.h"
#include <stdlib.h>
#include <stddef.h>

struct kvmsim_rcu_cb {
    struct rcu_head head;
    void *ctx;
    void (*fn)(void *ctx);
};

static void kvmsim_rcu_cb_run(struct rcu_head *head) {
    struct kvmsim_rcu_cb *cb = caa_container_of(head, struct kvmsim_rcu_cb, head);
    cb->fn(cb->ctx);
    free(cb);
}

void kvmsim_urcu_call_rcu(void *ctx, void (*fn)(void *ctx)) {
    struct kvmsim_rcu_cb *cb = malloc(sizeof(*cb));
    if (!cb) abort();
    cb->ctx = ctx;
    cb->fn = fn;
    urcu_memb_call_rcu(&cb->head, kvmsim_rcu_cb_run);
}
