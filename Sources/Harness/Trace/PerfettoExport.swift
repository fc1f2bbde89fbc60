// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// Chrome / Perfetto trace-event JSON of a replayed schedule (`replay --perfetto`),
/// for ui.perfetto.dev or chrome://tracing.
///
/// One process (the run), one track (thread) per actor. Each scheduling step is a
/// complete event ("X") on the actor that ran it, named by the point it resumed
/// at; each line of the narration is an instant event ("i") on its actor's
/// track, in a category (fault, notifier, flush, hcall, rcu, host, violation); a
/// violation is a global instant. Time is the step number, in microseconds.
public enum PerfettoExport {
    public struct Event: Encodable {
        var name: String
        var cat: String?
        var ph: String
        var ts: Int?
        var dur: Int?
        var pid: Int
        var tid: Int
        var s: String?
        var args: [String: Arg]?
    }

    /// An argument value: text or a number (sort indexes must be numbers).
    public enum Arg: Encodable {
        case text(String), number(Int)
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self { case .text(let s): try c.encode(s); case .number(let n): try c.encode(n) }
        }
    }

    struct File: Encodable {
        var traceEvents: [Event]
        var displayTimeUnit = "ns"
        var otherData: [String: String]
    }

    /// The category of a narration line, from its words.
    static func category(_ text: String) -> String {
        let t = text.lowercased()
        if t.hasPrefix("violation") { return "violation" }
        if t.contains("rcu") || t.contains("grace") { return "rcu" }
        if t.contains("notifier") || t.contains("invalidate_range") { return "notifier" }
        if t.contains("h_enter") || t.contains("h_remove") || t.contains("h_protect") || t.contains("h_bulk") || t.contains("h_register") { return "hcall" }
        if t.contains("tlbie") || t.contains("tlbiel") || t.contains("flush") { return "flush" }
        if t.contains("fault") || t.contains("map_page") || t.contains("gfn_to_pfn") { return "fault" }
        if t.hasPrefix("host") { return "host" }
        return "model"
    }

    public static func make(_ t: TraceFile, _ r: Runner.Replay) -> Data {
        let tids = Dictionary(uniqueKeysWithValues: t.actors.enumerated().map { ($1, $0 + 1) })
        var ev: [Event] = [Event(name: "process_name", ph: "M", pid: 1, tid: 0,
                                 args: ["name": .text("kvmsim \(t.scenario) --variant \(t.variant) seed \(t.seed) schedule \(t.schedule)")])]
        for (name, tid) in [("main", 0)] + t.actors.enumerated().map({ ($1, $0 + 1) }) {
            ev.append(Event(name: "thread_name", ph: "M", pid: 1, tid: tid, args: ["name": .text(name)]))
            ev.append(Event(name: "thread_sort_index", ph: "M", pid: 1, tid: tid, args: ["sort_index": .number(tid)]))
        }
        for (i, s) in r.steps.enumerated() {
            ev.append(Event(name: s.point, cat: "step", ph: "X", ts: i, dur: 1, pid: 1, tid: tids[s.actor] ?? 0))
        }
        for e in r.events {
            let cat = category(e.text)
            ev.append(Event(name: String(e.text.prefix(80)), cat: cat, ph: "i", ts: max(0, e.step), pid: 1,
                            tid: tids[e.actor] ?? 0, s: cat == "violation" ? "g" : "t", args: ["text": .text(e.text)]))
        }
        let file = File(traceEvents: ev, otherData: ["scenario": t.scenario, "variant": t.variant,
                                                     "violation": r.violations.first?.description ?? "none"])
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try! enc.encode(file)
    }
}
