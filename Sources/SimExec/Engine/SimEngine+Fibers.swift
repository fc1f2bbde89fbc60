// SPDX-License-Identifier: GPL-2.0-only
import CFiber

/// The fiber backend of deterministic mode: every executor is a fiber (a stack
/// of its own, `Sources/CFiber`) on the thread that calls `runSchedule`, and
/// passing the baton is a user-level context switch that also moves the Swift
/// runtime's per-job thread-local state.
extension SimEngine {
    /// Switches from the context `from` to executor `to` (or, with nil, back to
    /// the thread in `runSchedule`/`shutdown`). Mutex held.
    func switchFiber(from: OpaquePointer, to next: Int?) {
        guard let next else {
            SimExecutor.setCurrent(nil)
            kvmsim_fiber_switch(from, threadFiber!)
            return
        }
        unowned(unsafe) let target = executorTable[next].takeUnretainedValue()
        if target.fiber == nil {
            guard let f = kvmsim_fiber_create(Self.fiberStackSize, simExecutorFiberMain, Unmanaged.passUnretained(target).toOpaque()) else {
                fatalError("kvmsim: cannot map a \(Self.fiberStackSize >> 20) MiB fiber stack")
            }
            target.fiber = f
        }
        SimExecutor.setCurrent(target)
        kvmsim_fiber_switch(from, target.fiber!)
    }

    /// The first point of a schedule checks, inside a running task, that the
    /// fibers move the runtime's current-task slot (see Sources/CFiber).
    func checkFiberLayout() {
        guard withUnsafeCurrentTask(body: { $0 != nil }) else { return }   // a body job: check inside a task
        fiberLayoutChecked = true
        if kvmsim_fiber_check_active_task() == 0 {
            fatalError("kvmsim: this Swift runtime's thread-local layout differs from the one the fiber backend knows; run with KVMSIM_DETERMINISTIC_BACKEND=threads")
        }
    }

    /// Lets every started fiber leave its loop, then frees the stacks.
    func shutdownFibers() {
        onThreadFiber { thread in
            for e in executors {
                e.shutdown = true
                guard let f = e.fiber else { continue }
                kvmsim_fiber_set_exit(f, thread)
                switchFiber(from: thread, to: e.id)
                precondition(kvmsim_fiber_finished(f) != 0)
                kvmsim_fiber_destroy(f)
                e.fiber = nil
            }
        }
        executors.removeAll()
    }

    /// Runs `body` with the calling thread's own context recorded as
    /// `threadFiber`, the context fibers switch back to (mutex held).
    func onThreadFiber(_ body: (OpaquePointer) -> Void) {
        guard let thread = kvmsim_fiber_create_for_thread() else { fatalError("kvmsim: out of memory") }
        threadFiber = thread
        body(thread)
        SimExecutor.setCurrent(nil)
        kvmsim_fiber_destroy(thread)
        threadFiber = nil
    }
}
