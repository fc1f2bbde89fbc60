// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CURCU
import CFiber

/// Deterministic schedules: the baton, scheduling points, waits, and the pick of
/// the next executor. One executor runs at a time; every choice is the
/// strategy's, recorded in `decisions` and hashed with the point's name.
extension SimEngine {
    /// Takes `mutex`, which guards the scheduler's state, with the thread backend.
    /// A no-op with fibers: every executor and the caller of `runSchedule` run on
    /// one thread, one at a time, so nothing can race (this was 5% of a step).
    @inline(__always) func lockScheduler() { if backend == .threads { pthread_mutex_lock(&mutex) } }
    @inline(__always) func unlockScheduler() { if backend == .threads { pthread_mutex_unlock(&mutex) } }

    /// Calls `body` with the schedule's strategy, borrowed.
    @inline(__always)
    func withStrategy<R>(_ body: (SchedulingStrategy) -> R) -> R {
        strategyRef._withUnsafeGuaranteedRef { body($0.strategy) }
    }

    /// Prepares a new schedule: clears the stop flag, violations, events and the step log.
    public func beginSchedule(strategy: SchedulingStrategy, scheduleSeed: UInt64) {
        precondition(!wedged, "engine wedged by an earlier deadlock")
        if strategyBox.strategy !== strategy {               // a run keeps one strategy: box it once
            strategyBox = StrategyBox(strategy)
            strategyRef = Unmanaged.passUnretained(strategyBox)
        }
        strategy.reset(scheduleSeed: scheduleSeed, actorCount: executors.count)
        decisionLog.removeAll()
        stepLog.removeAll(keepingCapacity: true)
        hasher = StepHash()
        resetStoreBuffers()
        deadlocked = false
        hung = false
        pendingBodies = 0
        stopFlag.store(false, ordering: .relaxed)
        violationLock.withLock { $0 = ([], [:]) }
        eventLock.withLock { $0.removeAll() }
    }

    /// Runs the spawned tasks of the current schedule to quiescence, one step at a time.
    /// Returns when every actor is idle, or on deadlock (see `deadlocked`).
    public func runSchedule() {
        precondition(mode == .deterministic)
        lockScheduler()
        scheduleDone = false
        if let next = pickNext(previous: -1) {
            grant(next)
            switch backend {
            case .threads:
                while !scheduleDone { pthread_cond_wait(&mainCond, &mutex) }
            case .fibers:
                onThreadFiber { switchFiber(from: $0, to: next) }
            }
        }
        unlockScheduler()
        if deadlocked {
            report(.deadlock, "no actor can run but \(activeTasks.load(ordering: .relaxed) + pendingBodies) task(s) have not finished")
        }
    }

    // MARK: - points

    /// A named scheduling point. In deterministic mode the caller's thread gives the
    /// baton to the strategy's choice and blocks until chosen again.
    /// Inlinable so that in parallel mode a point costs one compare in the caller.
    @inlinable @inline(__always)
    public func point(_ name: StaticString) {
        guard mode == .deterministic else { if recordPasses { recordPass(name) }; return }
        deterministicPoint(name)
    }

    @usableFromInline
    func deterministicPoint(_ name: StaticString) {
        SimExecutor.withCurrent { pause($0, at: name, until: nil) }
    }

    /// A scheduling point where the caller retries or spins without progress
    /// (a `goto retry`, a cancelled guest entry). Deterministic strategies use it
    /// for fairness: PCT drops the caller's priority below everyone else's.
    public func yieldPoint(_ name: StaticString) {
        guard mode == .deterministic else { if recordPasses { recordPass(name) }; return }
        SimExecutor.withCurrent { me in
            lockScheduler()
            withStrategy { $0.yielded(me.id) }
            unlockScheduler()
            pause(me, at: name, until: nil)
        }
    }

    /// Blocks until `condition` holds. The condition must read only shared state that
    /// other actors change (atomics, locks' words). Deterministic mode: the caller is
    /// not picked while the condition is false. Parallel mode: spins with sched_yield.
    /// The condition does not escape (no allocation per wait): a paused waiter's
    /// predicate is cleared before `pause` returns.
    public func waitUntil(_ name: StaticString, _ condition: () -> Bool) {
        if mode == .deterministic {
            // A condition is one look at shared state: never an access point.
            let waited: Void? = SimExecutor.withCurrent { me in
                if withoutAccessPoints(condition) { pause(me, at: name, until: nil); if withoutAccessPoints(condition) { return } }
                withoutActuallyEscaping(condition) { condition in
                    withUnsafePointer(to: WaitCondition(holds: condition)) { predicate in
                        while !withoutAccessPoints(condition) { pause(me, at: name, until: predicate) }
                    }
                }
            }
            if waited != nil { return }
        }
        // Parallel mode, or a thread no executor runs: spin.
        spinUntil(condition)
        if recordPasses { recordPass(name) }
    }

    /// Parallel mode: spins until `condition` holds, passing no point (a lock's
    /// slow path, which records its one point when it has the lock).
    public func spinUntil(_ condition: () -> Bool) {
        var spins = 0
        while !withoutAccessPoints(condition) {
            spins += 1
            if spins > 64 { kvmsim_cpu_relax() }
        }
    }

    func pause(_ me: SimExecutor, at name: StaticString, until condition: UnsafePointer<WaitCondition>?) {
        if backend == .fibers && tasksSpawned && !fiberLayoutChecked { checkFiberLayout() }
        lockScheduler()
        me.state = .paused
        me.pausedPoint = name
        me.waitPredicate = condition
        if let next = pickNext(previous: me.id) {
            handOff(from: me, to: next)
        } else {
            // Nobody, not even the caller, can run: deadlock. The caller never resumes.
            deadlocked = true
            wedged = true
            scheduleDone = true
            switch backend {
            case .threads:
                pthread_cond_signal(&mainCond)
                while true { pthread_cond_wait(&me.cond, &mutex) }
            case .fibers:
                switchFiber(from: me.fiber!, to: nil)
                fatalError("a deadlocked fiber was resumed")
            }
        }
        me.state = .running
        me.waitPredicate = nil
        unlockScheduler()
    }

    // MARK: - the baton

    /// Gives the baton to `next`; if that is another executor, returns when the
    /// caller holds the baton again (mutex held on entry and on return).
    func handOff(from me: SimExecutor, to next: Int) {
        grant(next)
        guard next != me.id else { return }
        switch backend {
        case .threads: while baton != me.id && !me.shutdown { pthread_cond_wait(&me.cond, &mutex) }
        case .fibers: switchFiber(from: me.fiber!, to: next)
        }
    }

    func grant(_ next: Int) {
        baton = next
        if backend == .threads { pthread_cond_signal(&executorTable[next].takeUnretainedValue().cond) }
    }

    /// An executor's life in deterministic mode: run a job whenever it holds the
    /// baton, then pass the baton on (or end the schedule). Thread backend: mutex
    /// held except while a job runs.
    func deterministicLoop(_ me: SimExecutor) {
        while true {
            while !(baton == me.id && !me.queueIsEmpty) && !me.shutdown {
                switch backend {
                case .threads: pthread_cond_wait(&me.cond, &mutex)
                case .fibers: switchFiber(from: me.fiber!, to: nil)  // not expected: a fiber runs only when picked
                }
            }
            if me.shutdown { break }
            let job = me.popJob()
            me.state = .running
            unlockScheduler()
            me.run(job)
            lockScheduler()
            if case .body = job { pendingBodies -= 1 }
            me.state = me.queueIsEmpty ? .idle : .ready
            if let next = pickNext(previous: me.id) {
                handOff(from: me, to: next)
            } else {
                baton = -1
                if executors.contains(where: { $0.state == .paused }) { deadlocked = true; wedged = true }
                scheduleDone = true
                switch backend {
                case .threads: pthread_cond_signal(&mainCond)
                case .fibers: switchFiber(from: me.fiber!, to: nil)
                }
            }
        }
    }

    // MARK: - picking the next executor

    /// Picks the next executor to run (mutex held) and records the step.
    /// (The executors and the strategy outlive every schedule, so the loop reads
    /// them through unmanaged references: no reference counting a step.)
    func pickNext(previous: Int) -> Int? {
        // Wait conditions read kernel memory: never an access point here.
        // `withoutAccessPoints`, written out: through the closure this loop
        // costs 0.7 M more instructions per 3,000 sync-mmu-race schedules.
        let gate = kvmsim_access_gate()
        if gate != 0 { kvmsim_set_access_gate(0) }
        defer { if gate != 0 { kvmsim_set_access_gate(gate) } }
        // The `pso` memory model's engines pick drainers too (StoreBuffer.swift);
        // every other run keeps this loop as it was.
        if hasDrainers { return pickNextOrDrain(previous: previous) }
        var count = 0
        for i in executorTable.indices {
            // Borrowed, not copied: an `unowned(unsafe)` local is a strong copy,
            // retained and released around every use.
            let runnable = executorTable[i]._withUnsafeGuaranteedRef { e -> Bool in
                switch e.state {
                case .ready: return true
                case .paused: return e.waitPredicate?.pointee.holds() ?? true
                case .idle, .running: return false
                }
            }
            if runnable { runnableBuffer[count] = i; count += 1 }
        }
        guard count > 0 else { return nil }
        let chosen = choose(count: count, previous: previous)
        let point: StaticString = executorTable[chosen]._withUnsafeGuaranteedRef { $0.state == .ready ? "job" : $0.pausedPoint }
        recordStep(chosen, at: point)
        return chosen
    }

    /// The strategy's pick among the first `count` entries of `runnableBuffer`,
    /// appended to `decisions`.
    @inline(__always)
    func choose(count: Int, previous: Int) -> Int {
        let step = decisionLog.count
        let runnable = UnsafeBufferPointer(start: runnableBuffer, count: count)
        let chosen = strategyRef._withUnsafeGuaranteedRef { box in
            if let random = box.random {
                return random._withUnsafeGuaranteedRef { $0.choose(runnable: runnable, step: step, previous: previous) }
            }
            return box.strategy.choose(runnable: runnable, step: step, previous: previous)
        }
        decisionLog.append(UInt16(chosen))
        return chosen
    }

    /// The step just chosen, into the schedule's hash (and step log), and the
    /// livelock bound.
    @inline(__always)
    func recordStep(_ chosen: Int, at point: StaticString) {
        hasher.combine(UInt64(chosen) << 32 ^ pointHash(point))
        if recordSteps { stepLog.append((chosen, point)) }
        if decisionLog.count > maxSteps && !hung { hung = true; stopFlag.store(true, ordering: .relaxed) }
    }

    /// `hashName`, cached by the string's address (a point's name is a literal; the
    /// hash itself depends only on its bytes, so traces hash alike in every process).
    /// Two ways per set, the last used first: with one, two hot points whose
    /// addresses met in a slot (it depends on the binary's layout) evicted each
    /// other at every step (1,072 instructions a sync-mmu-race schedule in one
    /// build).
    @inline(__always)
    func pointHash(_ s: StaticString) -> UInt64 {
        guard s.hasPointerRepresentation else { return Self.hashName(s) }
        let key = UInt(bitPattern: s.utf8Start)
        let set = Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 56) &* 2   // 256 sets
        if pointHashCache[set].key == key { return pointHashCache[set].hash }
        return pointHashMiss(s, key: key, set: set)
    }

    @inline(never)
    func pointHashMiss(_ s: StaticString, key: UInt, set: Int) -> UInt64 {
        let other = pointHashCache[set + 1]
        if other.key == key {                               // the second way: swap it to the front
            pointHashCache[set + 1] = pointHashCache[set]
            pointHashCache[set] = other
            return other.hash
        }
        let h = Self.hashName(s)
        pointHashCache[set + 1] = pointHashCache[set]
        pointHashCache[set] = (key, h)
        return h
    }
    static let pointHashSlots = 512

    static func hashName(_ s: StaticString) -> UInt64 {
        var h = FNV1a64()
        s.withUTF8Buffer { buf in for b in buf { h.combine(UInt64(b)) } }
        return h.value
    }
}

/// A waiter's condition, as `SimEngine.pickNext` reads it through a pointer. A
/// concrete struct keeps the closure in its natural representation: a bare
/// `UnsafePointer<() -> Bool>` stores it maximally abstracted, and every check
/// then goes through two reabstraction thunks.
struct WaitCondition {
    let holds: () -> Bool
}
