// SPDX-License-Identifier: GPL-2.0-only
import Testing
@testable import SimExec

/// Access-level points: with `.accesses`, every access to kernel memory is a
/// place the scheduler may switch, so a read-modify-write made of a load and a
/// store can lose an update; at named points only it cannot, and neither can
/// memory that is not the kernel's or an access made inside `withoutAccessPoints`.
@Suite struct AccessPointsTests {
    enum Increment { case plain, suppressed }

    /// Two actors each add one to a word with a separate load and store, under
    /// `schedules` random schedules; the set of final values seen.
    func finalValues(points: PointGranularity, kernel: Bool, increment: Increment = .plain, schedules: Int = 200) -> Set<UInt64> {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"], points: points)
        defer { engine.shutdown() }
        var seen = Set<UInt64>()
        for s in 0..<schedules {
            let word = AtomicWords(count: 1, kernel: kernel)
            defer { word.free() }
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: UInt64(s))
            for e in engine.executors {
                engine.spawn(on: e) {
                    switch increment {
                    case .plain: word.store(0, word.load(0) + 1)
                    case .suppressed: withoutAccessPoints { word.store(0, word.load(0) + 1) }
                    }
                }
            }
            engine.runSchedule()
            seen.insert(word.peek(0))
        }
        return seen
    }

    @Test func aLoadAndAStoreOfKernelMemoryCanInterleave() {
        #expect(finalValues(points: .accesses, kernel: true) == [1, 2])
    }

    @Test func namedPointsNeverSplitAnAccessSequence() {
        #expect(finalValues(points: .named, kernel: true) == [2])
    }

    @Test func memoryThatIsNotTheKernelsIsNoPoint() {
        #expect(finalValues(points: .accesses, kernel: false) == [2])
    }

    @Test func withoutAccessPointsClosesTheGate() {
        #expect(finalValues(points: .accesses, kernel: true, increment: .suppressed) == [2])
    }

    @Test func theSameSeedTakesTheSameAccessSchedule() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"], points: .accesses)
        defer { engine.shutdown() }
        func once() -> [UInt16] {
            let word = AtomicWords(count: 2, kernel: true)
            defer { word.free() }
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 9)
            for (i, e) in engine.executors.enumerated() {
                engine.spawn(on: e) { for _ in 0..<8 { word.add(i, 1); _ = word.load(1 - i) } }
            }
            engine.runSchedule()
            return engine.decisions
        }
        let first = once()
        #expect(first.count > 16)            // a point before each of the 32 accesses, less the ones run alone
        #expect(once() == first)
    }
}
