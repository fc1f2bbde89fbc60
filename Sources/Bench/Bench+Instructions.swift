// SPDX-License-Identifier: GPL-2.0-only
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SimExec
import Harness

/// Figure 9: figure 3's model and bare schedules counted in instructions, not
/// seconds. `kvmsim bench` runs itself under valgrind's callgrind (with its
/// simulated caches and branch predictor) for two numbers of schedules of each
/// loop; the difference divided by the difference in schedules is the cost of a
/// schedule, free of start-up and of whatever else the machine does. The
/// wall-clock overhead of figure 3 and this one differ by how well the model's
/// code runs on the core (instruction-cache misses, mispredicted branches,
/// atomics), which the simulated counts show.
extension Bench {
    /// What `kvmsim bench --loop` runs (under valgrind): one of figure 3's loops.
    public enum Loop: String, CaseIterable, Sendable {
        case model, bare
    }

    /// The counts valgrind prints for one run.
    struct ValgrindCounts: Equatable {
        var instructions = 0.0, i1Misses = 0.0, d1Misses = 0.0, mispredicts = 0.0
        static func - (a: Self, b: Self) -> Self {
            Self(instructions: a.instructions - b.instructions, i1Misses: a.i1Misses - b.i1Misses,
                 d1Misses: a.d1Misses - b.d1Misses, mispredicts: a.mispredicts - b.mispredicts)
        }
    }

    /// Schedules of each loop in the two runs under valgrind.
    static func instructionCounts(quick: Bool) -> (Int, Int) { quick ? (100, 400) : (1000, 4000) }

    /// Runs `count` schedules of `loop`, after 100 model schedules that set the
    /// bare world's points per actor as figure 3 does (the same in every run, so
    /// the difference of two runs leaves them out).
    public static func runLoop(_ loop: Loop, count: Int) throws(InputError) {
        guard count > 0 else { throw InputError("--loop-schedules must be at least 1") }
        let warmUp = try Runner(modelRun(schedules: 100)).run()
        switch loop {
        case .model:
            _ = try Runner(modelRun(schedules: count)).run()
        case .bare:
            let o = try modelRun(schedules: count)
            let engine = SimEngine(mode: .deterministic, actorNames: o.selection.actorNames, backend: o.backend)
            defer { engine.shutdown() }
            let steps = Int((Double(warmUp.steps) / Double(max(1, warmUp.schedules))).rounded())
            bareSchedules(count, engine: engine, strategy: RandomStrategy(), pointsPerActor: max(1, steps / engine.executors.count))
        }
    }

    /// valgrind and strip, which figure 9 needs: checked before any figure is
    /// measured, so that a machine without them gets one line and nothing else.
    static func instructionTools() throws(InputError) -> (valgrind: String, strip: String) {
        guard let valgrind = executableInPath("valgrind") else {
            throw InputError("the instructions figure runs kvmsim under valgrind, which is not installed (Debian package valgrind)")
        }
        guard let strip = executableInPath("strip") else {
            throw InputError("the instructions figure needs strip (Debian package binutils) for a copy of kvmsim valgrind can read")
        }
        return (valgrind, strip)
    }

    static func instructions(_ r: inout Report, quick: Bool, tools: (valgrind: String, strip: String)) throws(InputError) {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let me = try strippedCopyOfSelf(into: dir, strip: tools.strip)
        let (few, many) = instructionCounts(quick: quick)
        func perSchedule(_ loop: Loop) throws(InputError) -> ValgrindCounts {
            let a = try callgrind(tools.valgrind, me, loop, schedules: few, logIn: dir)
            let b = try callgrind(tools.valgrind, me, loop, schedules: many, logIn: dir)
            let d = b - a, n = Double(many - few)
            return ValgrindCounts(instructions: d.instructions / n, i1Misses: d.i1Misses / n, d1Misses: d.d1Misses / n, mispredicts: d.mispredicts / n)
        }
        let model = try perSchedule(.model), bare = try perSchedule(.bare)
        r.instructionSchedules = many - few
        r.modelInstructionsPerSchedule = model.instructions
        r.bareInstructionsPerSchedule = bare.instructions
        r.modelOverheadInstructions = bare.instructions > 0 ? model.instructions / bare.instructions : 0
        r.modelI1MissesPerSchedule = model.i1Misses
        r.bareI1MissesPerSchedule = bare.i1Misses
        r.modelD1MissesPerSchedule = model.d1Misses
        r.bareD1MissesPerSchedule = bare.d1Misses
        r.modelMispredictsPerSchedule = model.mispredicts
        r.bareMispredictsPerSchedule = bare.mispredicts
    }

    /// A new private directory under $TMPDIR (mkdtemp) for the copy and the logs.
    static func temporaryDirectory() throws(InputError) -> String {
        var template = Array(((NSTemporaryDirectory() as NSString).appendingPathComponent("kvmsim-bench-XXXXXX")).utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw InputError("could not make a temporary directory for the instructions figure: errno \(errno)") }
        return String(cString: made)
    }

    /// A copy of this executable without debug information (`strip -g`) in
    /// `dir`: valgrind 3.19 (Debian 12) cannot read Swift 6.3's DWARF 5 and
    /// gives up.
    static func strippedCopyOfSelf(into dir: String, strip: String) throws(InputError) -> String {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let copy = dir + "/kvmsim"
        do { try FileManager.default.copyItem(atPath: me, toPath: copy) } catch {
            throw InputError("could not copy \(me) for valgrind: \(error.localizedDescription)")
        }
        let (status, err) = run(strip, ["-g", copy])
        guard status == 0 else { throw InputError("strip -g \(copy) failed (status \(status)): \(lastLine(err))") }
        return copy
    }

    /// One run of `kvmsim bench --loop` under callgrind, and the counts of its
    /// summary (valgrind's log, kept apart from the program's own stderr).
    static func callgrind(_ valgrind: String, _ kvmsim: String, _ loop: Loop, schedules: Int, logIn dir: String) throws(InputError) -> ValgrindCounts {
        let log = "\(dir)/valgrind-\(loop.rawValue)-\(schedules).log"
        let (status, err) = run(valgrind, ["--tool=callgrind", "--cache-sim=yes", "--branch-sim=yes", "--callgrind-out-file=/dev/null",
                                           "--log-file=\(log)", kvmsim, "bench", "--loop", loop.rawValue, "--loop-schedules", String(schedules)])
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0, let counts = parseValgrind(text) else {
            let why = err.isEmpty ? lastLine(text) : lastLine(err)
            throw InputError("valgrind on 'kvmsim bench --loop \(loop.rawValue)' failed (status \(status)): \(why)")
        }
        return counts
    }

    /// Runs `path` with `arguments`, its stdout discarded; its exit status
    /// (-1 if it could not start) and stderr.
    static func run(_ path: String, _ arguments: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return (-1, "\(error.localizedDescription)") }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last { !$0.allSatisfy { $0 == " " || $0 == "=" || $0.isNumber } }.map(String.init) ?? "(no output)"
    }

    /// The totals of callgrind's summary (`==pid== I   refs:  1,234` and the
    /// I1, D1 and branch lines); nil without an instruction count.
    static func parseValgrind(_ text: String) -> ValgrindCounts? {
        var c = ValgrindCounts(), sawRefs = false
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), line.hasPrefix("==") else { continue }
            let label = line[..<colon].split(separator: " ", maxSplits: 1).dropFirst().first?
                .split(separator: " ").joined(separator: " ") ?? ""
            let digits = line[line.index(after: colon)...].drop { $0 == " " }.prefix { $0.isNumber || $0 == "," }
            guard let value = Double(digits.filter { $0 != "," }) else { continue }
            switch label {
            case "I refs": c.instructions = value; sawRefs = true
            case "I1 misses": c.i1Misses = value
            case "D1 misses": c.d1Misses = value
            case "Mispredicts": c.mispredicts = value
            default: break
            }
        }
        return sawRefs ? c : nil
    }

    /// The path of `name` in `$PATH`, if it is an executable there.
    static func executableInPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
