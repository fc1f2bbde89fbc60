// SPDX-License-Identifier: GPL-2.0-only
import SimExec

extension Runner {
    /// The result of replaying a trace: its narration, steps and violations.
    public struct Replay: Sendable {
        public var events: [SimEvent]
        public var steps: [(actor: String, point: String)]
        public var violations: [Violation]
        /// Step at which the trace named an actor that could not run (model changed).
        public var mismatchStep: Int?
    }

    /// Replays a trace step by step with narration on.
    public static func replay(_ t: TraceFile) throws(InputError) -> Replay {
        var o = RunOptions(t.selection)
        o.seed = t.seed
        o.points = t.points
        let runner = try Runner(o)
        let engine = SimEngine(mode: .deterministic, actorNames: t.actors, points: t.points)
        engine.recordEvents = true
        engine.recordSteps = true
        let strategy = ReplayStrategy(decisions: t.decisions)
        let v = runner.runSchedule(engine: engine, strategy: strategy, scheduleSeed: t.scheduleSeed)
        let steps = engine.stepLog.map { (t.actors[$0.actor], $0.point.description) }
        let r = Replay(events: engine.events, steps: steps, violations: v, mismatchStep: strategy.mismatch?.step)
        engine.shutdown()
        return r
    }
}
