// SPDX-License-Identifier: GPL-2.0-only
import CFiber
import CURCU

/// Where deterministic mode may switch actors.
public enum PointGranularity: String, Sendable, Codable, CaseIterable {
    /// At the named points the model places where the kernel can be preempted,
    /// sleep or be overtaken (and at waits, yields, lock acquires).
    case named
    /// Also before every access to kernel memory (each load, store and
    /// read-modify-write of `AtomicWords` made with `kernel: true`), at each
    /// RCU read-lock and unlock and at each lock release and trylock (an
    /// acquire is a point already), under sequential consistency, as Loom and
    /// Shuttle switch: every interleaving real threads can make of those
    /// accesses is a schedule.
    case accesses
}

/// The scheduling point before an access to kernel memory (access-level mode).
/// Out of line: `AtomicWords` calls it only when the gate is open.
@inline(never)
public func kernelAccessPoint(_ name: StaticString) {
    SimExecutor.withCurrent { me in me.engine.accessPause(me, at: name) }
}

/// An access-level point of an operation that is not a kernel memory word (an
/// RCU read-lock or unlock, a lock release): passed only when the running
/// context's gate is open.
@inlinable @inline(__always)
public func accessPoint(_ name: StaticString) {
    if kvmsim_access_gate() != 0 { kernelAccessPoint(name) }
}

/// Runs `body` with access-level points closed: an oracle's check, the text of
/// narration, a wait condition, the scheduler. Such a scope never reaches a
/// scheduling point, so the gate it restores is the one it found.
@inlinable @inline(__always)
public func withoutAccessPoints<R>(_ body: () throws -> R) rethrows -> R {
    let gate = kvmsim_access_gate()
    if gate == 0 { return try body() }
    kvmsim_set_access_gate(0)
    defer { kvmsim_set_access_gate(gate) }
    return try body()
}

extension SimEngine {
    /// An access point: in deterministic mode a plain point named by the kind
    /// of access; in parallel mode a pass, noted while recording.
    func accessPause(_ me: SimExecutor, at name: StaticString) {
        if mode == .parallel {
            if recordPasses { me.passes.append((kvmsim_timestamp(), name)) }
            return
        }
        pause(me, at: name, until: nil)
    }
}
