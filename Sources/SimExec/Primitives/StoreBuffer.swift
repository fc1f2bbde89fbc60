// SPDX-License-Identifier: GPL-2.0-only
import CURCU
import CFiber

/// The memory model deterministic mode explores.
///
/// - `sc`: sequential consistency. Every store is visible to every CPU the
///   moment it is made; a missing barrier is invisible.
/// - `pso`: Partial Store Order for the words a world declares weakly ordered
///   (`WeakWords`): a CPU's stores to them wait in its `StoreBuffer` and
///   become visible later, in an order the scheduler picks, so that stores with no smp_wmb() between them can be seen in either
///   order (SPARC PSO; POWER and arm64 allow this and more). Loads stay in
///   program order (a missing smp_rmb() is still invisible), and every other
///   word stays sequentially consistent.
///
/// Parallel mode runs on the machine's own memory model (x86-64: TSO, which
/// never reorders two stores), so `pso` shows what real threads here cannot.
public enum MemoryModel: String, Sendable, Codable, CaseIterable {
    case sc
    case pso
}

/// One CPU's store buffer in the `pso` memory model: its stores to weakly
/// ordered words (`WeakWords`), in program order, each tagged with the number
/// of smp_wmb() the CPU had passed when it made the store (its epoch).
///
/// Rules (Documentation/memory-barriers.txt, PSO):
/// - a store becomes visible when the scheduler drains it (`SimEngine`'s
///   drainer steps), and may be drained only when it is the oldest store
///   pending to its address (per-location coherence) and no store of an
///   earlier epoch is pending (smp_wmb() orders the stores before it against
///   those after it);
/// - the storing CPU reads its own pending stores (store forwarding);
/// - smp_mb(), every lock release and every read-modify-write but
///   `AtomicWords.addRelaxed` drain the whole buffer first: a release orders
///   every earlier store before it, and a value-returning atomic is fully
///   ordered. Lock acquires (a cmpxchg here) drain too, more than an acquire
///   orders: that can hide a reordering, never invent one.
///
/// Locking: used only by its CPU (stores, forwarding, fences) and by the
/// deterministic scheduler between steps, never at once (one context runs).
public final class StoreBuffer: @unchecked Sendable {
    struct Entry {
        let address: UnsafeMutablePointer<UInt64>
        let value: UInt64
        let epoch: Int
    }
    /// Pending stores, oldest first.
    private(set) var entries: [Entry] = []
    private var epoch = 0

    @usableFromInline var isEmpty: Bool { entries.isEmpty }
    public var pendingCount: Int { entries.count }

    /// A store by the owner: pending until drained.
    @usableFromInline func store(_ address: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
        entries.append(Entry(address: address, value: value, epoch: epoch))
    }

    /// The owner's load of `address`: its newest pending store there, if any.
    @usableFromInline func forwarded(_ address: UnsafeMutablePointer<UInt64>) -> UInt64? {
        var i = entries.count
        while i > 0 { i -= 1; if entries[i].address == address { return entries[i].value } }
        return nil
    }

    /// smp_wmb(): the stores made after it drain after every store made before it.
    @usableFromInline func writeBarrier() {
        if let last = entries.last, last.epoch == epoch { epoch += 1 }
    }

    /// smp_mb() or a release: every pending store becomes visible now, in
    /// program order (nothing else runs meanwhile).
    @usableFromInline func drainAll() {
        for e in entries { kvmsim_store_release(e.address, e.value) }
        entries.removeAll(keepingCapacity: true)
    }

    /// Which pending store a drainer step makes visible.
    enum Pick: Int {
        /// The oldest pending store.
        case oldest
        /// The youngest store that may drain now (oldest pending to its address,
        /// in the oldest pending epoch), when that is not the oldest store: the
        /// step that lets a later store overtake an earlier one.
        case overtaking
    }

    /// The index of the store `pick` drains now, or nil if it has none.
    func candidate(_ pick: Pick) -> Int? {
        guard let first = entries.first else { return nil }
        if pick == .oldest { return 0 }
        var best: Int?
        var i = 1
        while i < entries.count, entries[i].epoch == first.epoch {
            let a = entries[i].address
            var shadowed = false
            for j in 0..<i where entries[j].address == a { shadowed = true; break }
            if !shadowed { best = i }
            i += 1
        }
        return best
    }

    /// Makes the store at `index` visible.
    func drain(at index: Int) {
        let e = entries.remove(at: index)
        kvmsim_store_release(e.address, e.value)
    }

    /// Forgets every pending store (a new schedule).
    func reset() { entries.removeAll(keepingCapacity: true); epoch = 0 }
}

/// The calling CPU's store buffer (weak-memory mode, deterministic), or nil.
@usableFromInline @inline(__always)
func currentStoreBuffer() -> StoreBuffer? {
    SimExecutor.withCurrent { $0.storeBuffer } ?? nil
}

/// A fence for weakly ordered stores (smp_mb(), a release, a read-modify-write):
/// the calling CPU's pending stores become visible. A load and a branch when no
/// store buffer is in use.
@inlinable @inline(__always)
public func storeBufferFence() {
    if kvmsim_store_buffers_in_use() != 0 { storeBufferFenceSlow() }
}

@usableFromInline
func storeBufferFenceSlow() {
    if let sb = currentStoreBuffer(), !sb.isEmpty { sb.drainAll() }
}

/// smp_wmb() in weak-memory mode: the calling CPU's later stores drain after its earlier ones.
@usableFromInline
func storeBufferWriteBarrier() {
    currentStoreBuffer()?.writeBarrier()
}

extension SimEngine {
    /// Weak-memory mode: gives executor `owner` a store buffer that executors
    /// `drainers.oldest` and `drainers.overtaking` drain (actors of the world
    /// that run no code: the scheduler makes a drain step when it picks one).
    /// Deterministic mode only (in parallel mode the machine's own memory
    /// model applies; the drainer executors stay idle). Call when the world is
    /// built, before the schedule's first step; `beginSchedule` empties every
    /// buffer, so calling again with the same arguments changes nothing.
    public func enableStoreBuffer(owner: Int, drainers: (oldest: Int, overtaking: Int)) {
        guard mode == .deterministic else { return }
        lockScheduler()
        defer { unlockScheduler() }
        let o = executorTable[owner].takeUnretainedValue()
        if o.storeBuffer == nil { o.storeBuffer = StoreBuffer() }
        drainerRoles[drainers.oldest] = DrainerRole(owner: owner, pick: .oldest)
        drainerRoles[drainers.overtaking] = DrainerRole(owner: owner, pick: .overtaking)
        if !hasDrainers { kvmsim_store_buffers_add(1) }
        hasDrainers = true
    }

    /// `pickNext` in an engine with drainers: a drainer with a store to drain is
    /// runnable; when the strategy picks one, its store becomes visible, the
    /// step is recorded like any other, and the pick goes on (a drainer runs
    /// no code). Mutex held. The scan is `pickNext`'s, kept apart so that
    /// engines without drainers pay nothing: a drainer test in the one loop
    /// cost 1.9 M instructions per 3,000 sync-mmu-race schedules
    /// (docs/performance.md).
    func pickNextOrDrain(previous: Int) -> Int? {
        while true {
            var count = 0
            for i in executorTable.indices {
                let runnable = executorTable[i]._withUnsafeGuaranteedRef { e -> Bool in
                    switch e.state {
                    case .ready: return true
                    case .paused: return e.waitPredicate?.pointee.holds() ?? true
                    case .idle: return drainerRunnable(i)
                    case .running: return false
                    }
                }
                if runnable { runnableBuffer[count] = i; count += 1 }
            }
            guard count > 0 else { return nil }
            let chosen = choose(count: count, previous: previous)
            if drainerRoles[chosen] != nil {
                recordStep(chosen, at: "store buffer: drain")
                drainStep(chosen)
                continue
            }
            let point: StaticString = executorTable[chosen]._withUnsafeGuaranteedRef { $0.state == .ready ? "job" : $0.pausedPoint }
            recordStep(chosen, at: point)
            return chosen
        }
    }

    /// A drainer executor's buffer and pick.
    struct DrainerRole {
        let owner: Int
        let pick: StoreBuffer.Pick
    }

    /// Whether drainer `i` has a store to drain now (mutex held).
    func drainerRunnable(_ i: Int) -> Bool {
        guard let role = drainerRoles[i] else { return false }
        return executorTable[role.owner]._withUnsafeGuaranteedRef { $0.storeBuffer?.candidate(role.pick) } != nil
    }

    /// Every store buffer emptied (a new schedule; a stopped one may leave stores pending).
    func resetStoreBuffers() {
        guard hasDrainers else { return }
        for e in executors { e.storeBuffer?.reset() }
    }

    /// Drainer `i`'s step: one pending store becomes visible (mutex held).
    func drainStep(_ i: Int) {
        guard let role = drainerRoles[i] else { return }
        executorTable[role.owner]._withUnsafeGuaranteedRef { o in
            guard let sb = o.storeBuffer, let at = sb.candidate(role.pick) else { return }
            sb.drain(at: at)
            if recordEvents {
                let text = at == 0 ? "\(o.name)'s oldest pending store becomes visible (\(sb.pendingCount) still pending)"
                    : "\(o.name)'s store overtakes \(at) older pending one\(at == 1 ? "" : "s") and becomes visible"
                let e = SimEvent(step: decisionLog.count, actor: executors[i].name, text: text)
                eventLock.withLock { $0.append(e) }
            }
        }
    }
}
