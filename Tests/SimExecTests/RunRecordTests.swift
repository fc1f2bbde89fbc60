// SPDX-License-Identifier: GPL-2.0-only
import Testing
@testable import SimExec

/// What an engine records of a run beside the schedule itself: the decision
/// log (an engine-owned buffer) and the coverage counts (per executor on real
/// threads, taken by mark index).
@Suite struct RunRecordTests {
    @Test func theDecisionLogKeepsEveryStepAcrossGrowth() {
        var log = DecisionLog(capacity: 4)
        defer { log.free() }
        for i in 0..<1000 { log.append(UInt16(i % 7)) }
        #expect(log.count == 1000)
        #expect(log.array == (0..<1000).map { UInt16($0 % 7) })
        log.removeAll()
        #expect(log.count == 0 && log.array.isEmpty)
        log.append(3)
        #expect(log.array == [3])
    }

    @Test func decisionsAreTheScheduleSteps() {
        let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b"])
        defer { engine.shutdown() }
        func schedule() -> [UInt16] {
            engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 7)
            for e in engine.executors { engine.spawn(on: e) { for _ in 0..<5 { engine.point("p") } } }
            engine.runSchedule()
            #expect(engine.stepCount == engine.decisions.count)
            return engine.decisions
        }
        let first = schedule()
        #expect(first.count >= 12)                        // each actor: its jobs and five points
        #expect(first.allSatisfy { $0 < 2 })
        #expect(schedule() == first)                      // the log starts empty each schedule
    }

    static let markA = CoverageMark("tests: run record mark a")
    static let markB = CoverageMark("tests: run record mark b")

    /// Real threads count in rows of their own; the take sums them by mark
    /// index and zeroes them.
    @Test(arguments: [ExecutionMode.deterministic, .parallel])
    func coverageIsSummedOverExecutorsAndTakenOnce(mode: ExecutionMode) {
        let engine = SimEngine(mode: mode, actorNames: ["a", "b", "c"])
        defer { engine.shutdown() }
        if mode == .deterministic { engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1) }
        for e in engine.executors {
            engine.spawn(on: e) {
                for _ in 0..<100 { engine.cover(Self.markA) }
                engine.cover(Self.markB)
            }
        }
        if mode == .deterministic { engine.runSchedule() } else { engine.waitForTasks() }
        engine.cover(Self.markB)                           // a thread no executor runs
        var counts: [Int] = []
        engine.takeCoverage(into: &counts)
        #expect(counts[Self.markA.index] == 300)
        #expect(counts[Self.markB.index] == 4)
        engine.takeCoverage(into: &counts)                 // zeroed: nothing more
        #expect(counts[Self.markA.index] == 300)
        var again: [Int] = []
        engine.takeCoverage(into: &again)
        #expect(again.allSatisfy { $0 == 0 })
        #expect(CoverageMark.named(counts)[Self.markA.name] == 300 && CoverageMark.named(again)[Self.markA.name] == nil)
    }
}
