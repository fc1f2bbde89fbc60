import Testing
import Synchronization
@testable import SimExec

actor Worker: SimActor {
    nonisolated let executor: SimExecutor
    init(executor: SimExecutor) { self.executor = executor }
    func run(engine: SimEngine, box: Box, n: Int) {
        for i in 0..<n {
            engine.point("w")
            box.log.withLock { $0.append("\(executor.name)\(i)") }
        }
    }
}

final class Box: @unchecked Sendable { let log = Mutex<[String]>([]) }

func runOnce(seed: UInt64, engine: SimEngine) -> (String, UInt64) {
    let box = Box()
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: seed)
    let workers = engine.executors.map { Worker(executor: $0) }
    for w in workers {
        engine.spawn(on: w.executor) { await w.run(engine: engine, box: box, n: 5) }
    }
    engine.runSchedule()
    return (box.log.withLock { $0.joined(separator: ",") }, engine.scheduleHash)
}

@Test func sameSeedSameInterleaving() {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a", "b", "c"])
    defer { engine.shutdown() }
    let (l1, h1) = runOnce(seed: 42, engine: engine)
    let (l2, h2) = runOnce(seed: 42, engine: engine)
    #expect(l1 == l2)
    #expect(h1 == h2)
    var distinct = Set<String>()
    for s in 0..<50 { distinct.insert(runOnce(seed: UInt64(s), engine: engine).0) }
    #expect(distinct.count > 10)
    #expect(l1.split(separator: ",").count == 15)
}
