// SPDX-License-Identifier: GPL-2.0-only
// User-level context switching for the deterministic scheduler; see cfiber.h.
#define _GNU_SOURCE
#include "cfiber.h"

#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

// ---- the Swift runtime's thread-local blocks --------------------------------
//
// Swift 6.3 on Linux (checked with readelf on libswift_Concurrency.so and
// libswiftCore.so):
//   libswift_Concurrency TLS, 0x20 bytes: +0 ulock tid cache (stays),
//     +8 ActiveTask::Value, +0x10 ExecutorTrackingInfo::ActiveInfoInThread,
//     +0x18 FallbackTaskLocalStorage::Value                     (move 8..0x20)
//   libswiftCore TLS, 0x18 bytes: +0 SwiftTLSContext (exclusivity access set,
//     16 bytes), +0x10 ulock tid cache (stays)                  (move 0..0x10)
// A runtime whose blocks have other sizes is refused (kvmsim_fibers_supported).

extern void *swift_task_getCurrent(void);  // swiftcc, no arguments: C-compatible on x86-64 and arm64
extern void *swift_retain(void *);

enum {
    CONC_TLS_SIZE = 0x20, CONC_MOVE_OFFSET = 0x08, CONC_MOVE_SIZE = 0x18,
    CORE_TLS_SIZE = 0x18, CORE_MOVE_OFFSET = 0x00, CORE_MOVE_SIZE = 0x10,
};

struct tls_size_query { const char *name; size_t size; };

static int find_tls_size(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct tls_size_query *q = data;
    if (info->dlpi_name == NULL || strcmp(info->dlpi_name, q->name) != 0) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) { q->size = info->dlpi_phdr[i].p_memsz; return 1; }
    return 1;
}

/// The calling thread's TLS block of the object that defines `symbol`, and its size.
static unsigned char *tls_block_of(void *symbol, size_t *size) {
    Dl_info info;
    if (dladdr(symbol, &info) == 0 || info.dli_fname == NULL) return NULL;
    struct tls_size_query q = { info.dli_fname, 0 };
    dl_iterate_phdr(find_tls_size, &q);
    *size = q.size;
    void *handle = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (handle == NULL) return NULL;
    void *block = NULL;
    if (dlinfo(handle, RTLD_DI_TLS_DATA, &block) != 0) block = NULL;
    dlclose(handle);
    return block;
}

// Per OS thread: where this thread's runtime blocks are.
__thread void *kvmsim_current_executor_tls;
__thread int kvmsim_access_gate_tls __attribute__((tls_model("initial-exec")));
long kvmsim_store_buffer_engines;
__thread int kvmsim_line_layout_tls __attribute__((tls_model("initial-exec")));

static __thread __attribute__((tls_model("initial-exec"))) unsigned char *conc_block, *core_block;
static __thread __attribute__((tls_model("initial-exec"))) int blocks_state;  // 0 unknown, 1 found, -1 unusable

static int find_blocks(const char **reason) {
    if (blocks_state != 0) {
        if (blocks_state < 0 && reason) *reason = "the Swift runtime's thread-local blocks were not found";
        return blocks_state > 0;
    }
    size_t conc_size = 0, core_size = 0;
    conc_block = tls_block_of((void *)&swift_task_getCurrent, &conc_size);
    core_block = tls_block_of((void *)&swift_retain, &core_size);
    if (conc_block == NULL || core_block == NULL) {
        blocks_state = -1;
        if (reason) *reason = "the Swift runtime's thread-local blocks were not found (static stdlib?)";
        return 0;
    }
    if (conc_size != CONC_TLS_SIZE || core_size != CORE_TLS_SIZE) {
        blocks_state = -1;
        if (reason) *reason = "the Swift runtime's thread-local layout is not the one kvmsim knows (Swift 6.3)";
        return 0;
    }
    blocks_state = 1;
    return 1;
}

int kvmsim_fiber_check_active_task(void) {
    if (!find_blocks(NULL)) return 0;
    void *slot;
    memcpy(&slot, conc_block + CONC_MOVE_OFFSET, sizeof slot);
    void *task = swift_task_getCurrent();
    return task != NULL && slot == task;
}

// ---- sanitizer fiber hooks (weak: present only under a sanitizer runtime) ----

extern void *__tsan_get_current_fiber(void) __attribute__((weak));
extern void *__tsan_create_fiber(unsigned flags) __attribute__((weak));
extern void __tsan_destroy_fiber(void *fiber) __attribute__((weak));
extern void __tsan_switch_to_fiber(void *fiber, unsigned flags) __attribute__((weak));
extern void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size) __attribute__((weak));
extern void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old) __attribute__((weak));

// ---- the switch itself ----------------------------------------------------------
//
// x86-64: a minimal switch of the callee-saved registers, MXCSR and the x87
// control word (the SysV ABI's preserved state), about 20 instructions. glibc's
// swapcontext also saves and restores the signal mask, a system call per switch
// that the scheduler does not need. Elsewhere: swapcontext.
#if defined(__x86_64__)
#define KVMSIM_FIBER_ASM 1
// void kvmsim_fiber_jump(void **save_sp, void *next_sp)
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type kvmsim_fiber_jump,@function\n"
    "kvmsim_fiber_jump:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size kvmsim_fiber_jump, .-kvmsim_fiber_jump\n"
    ".section .note.GNU-stack,\"\",@progbits\n"
    ".text\n");
void kvmsim_fiber_jump(void **save_sp, void *next_sp) __attribute__((visibility("hidden")));
#endif

// ---- fibers -----------------------------------------------------------------

struct kvmsim_fiber {
#ifdef KVMSIM_FIBER_ASM
    void *sp;             // saved stack pointer (kvmsim_fiber_jump's frame on top)
#else
    ucontext_t context;
#endif
    unsigned char conc_tls[CONC_MOVE_SIZE];
    unsigned char core_tls[CORE_MOVE_SIZE];
    void *map;            // mmap'd region (guard page + stack), NULL for a thread record
    size_t map_size;
    const void *stack_bottom;  // for ASan
    size_t stack_size;
    void (*entry)(void *);
    void *arg;
    kvmsim_fiber *exit_to;
    void *tsan_fiber;
    void *asan_fake_stack;
    int finished;
    int is_thread;
};

// The fiber a switch came from (ASan learns the thread's stack bounds through it).
static __thread __attribute__((tls_model("initial-exec"))) kvmsim_fiber *switching_from;

int kvmsim_fibers_supported(const char **reason) {
    return find_blocks(reason);
}

kvmsim_fiber *kvmsim_fiber_create_for_thread(void) {
    kvmsim_fiber *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->is_thread = 1;
    if (__tsan_get_current_fiber) f->tsan_fiber = __tsan_get_current_fiber();
    return f;
}

static void after_switch(kvmsim_fiber *me) {
    if (__sanitizer_finish_switch_fiber) {
        const void *bottom = NULL; size_t size = 0;
        __sanitizer_finish_switch_fiber(me->asan_fake_stack, &bottom, &size);
        kvmsim_fiber *from = switching_from;
        if (from && from->is_thread) { from->stack_bottom = bottom; from->stack_size = size; }
    }
}

// The fiber being switched to (a new fiber's trampoline finds itself here).
static __thread __attribute__((tls_model("initial-exec"))) kvmsim_fiber *switching_to;

static void fiber_trampoline(void) {
    kvmsim_fiber *me = switching_to;
    after_switch(me);
    me->entry(me->arg);
    me->finished = 1;
    kvmsim_fiber_switch(me, me->exit_to);
    abort();  // a finished fiber is never resumed
}

kvmsim_fiber *kvmsim_fiber_create(size_t stack_size, void (*entry)(void *), void *arg) {
    long page = sysconf(_SC_PAGESIZE);
    size_t size = (stack_size + (size_t)page - 1) & ~((size_t)page - 1);
    size_t map_size = size + (size_t)page;
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) return NULL;
    if (mprotect(map, (size_t)page, PROT_NONE) != 0) { munmap(map, map_size); return NULL; }  // guard page
    kvmsim_fiber *f = calloc(1, sizeof *f);
    if (f == NULL) { munmap(map, map_size); return NULL; }
    f->map = map; f->map_size = map_size;
    f->stack_bottom = (unsigned char *)map + page; f->stack_size = size;
    f->entry = entry; f->arg = arg;
#ifdef KVMSIM_FIBER_ASM
    // The first jump "returns" into fiber_trampoline as if it had been called:
    // top: [0: fake return address][trampoline][rbp rbx r12-r15 = 0][mxcsr, fpucw].
    uint64_t *top = (uint64_t *)((unsigned char *)f->stack_bottom + size);
    top -= 2;                       // 16-byte aligned slot for the trampoline's address
    top[1] = 0;                     // the trampoline's own return address: none
    top[0] = (uint64_t)(uintptr_t)&fiber_trampoline;
    top -= 6;
    for (int i = 0; i < 6; i++) top[i] = 0;
    top -= 1;
    uint32_t mxcsr = 0x1F80; uint16_t fpucw = 0x037F;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    memcpy((unsigned char *)top, &mxcsr, 4);
    memcpy((unsigned char *)top + 4, &fpucw, 2);
    f->sp = top;
#else
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = (void *)f->stack_bottom;
    f->context.uc_stack.ss_size = size;
    f->context.uc_link = NULL;
    makecontext(&f->context, fiber_trampoline, 0);
#endif
    if (__tsan_create_fiber) f->tsan_fiber = __tsan_create_fiber(0);
    return f;
}

void kvmsim_fiber_set_exit(kvmsim_fiber *fiber, kvmsim_fiber *exit_to) { fiber->exit_to = exit_to; }

int kvmsim_fiber_finished(const kvmsim_fiber *fiber) { return fiber->finished; }

void kvmsim_fiber_switch(kvmsim_fiber *from, kvmsim_fiber *to) {
    if (from == to) return;
    find_blocks(NULL);
    // Move the job's runtime state out of the thread's blocks and the next one's in.
    memcpy(from->conc_tls, conc_block + CONC_MOVE_OFFSET, CONC_MOVE_SIZE);
    memcpy(from->core_tls, core_block + CORE_MOVE_OFFSET, CORE_MOVE_SIZE);
    memcpy(conc_block + CONC_MOVE_OFFSET, to->conc_tls, CONC_MOVE_SIZE);
    memcpy(core_block + CORE_MOVE_OFFSET, to->core_tls, CORE_MOVE_SIZE);
    switching_from = from;
    switching_to = to;
    if (__tsan_switch_to_fiber && to->tsan_fiber) __tsan_switch_to_fiber(to->tsan_fiber, 0);
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(from->finished ? NULL : &from->asan_fake_stack, to->stack_bottom, to->stack_size);
#ifdef KVMSIM_FIBER_ASM
    kvmsim_fiber_jump(&from->sp, to->sp);
#else
    swapcontext(&from->context, &to->context);
#endif
    after_switch(from);
}

void kvmsim_fiber_destroy(kvmsim_fiber *fiber) {
    if (fiber == NULL) return;
    if (fiber->tsan_fiber && !fiber->is_thread && __tsan_destroy_fiber) __tsan_destroy_fiber(fiber->tsan_fiber);
    if (fiber->map) munmap(fiber->map, fiber->map_size);
    free(fiber);
}
