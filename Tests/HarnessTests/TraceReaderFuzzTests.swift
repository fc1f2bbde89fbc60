// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
import SimExec
@testable import Harness
import Catalog
import TestSupport

/// Fuzzing of the trace reader: a trace file can come from anywhere. Mutants of
/// the checked-in minimal traces (bytes flipped, inserted, cut; JSON fields
/// deleted, nulled, retyped, made huge, negative or unknown) must load or give
/// an InputError, and whatever loads must replay without a crash. The corpus is
/// fixed (seeded); `KVMSIM_FUZZ_ITERATIONS` makes the run longer
/// (stress/fuzz-traces).
@Suite struct TraceReaderFuzzTests {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["KVMSIM_FUZZ_ITERATIONS"] ?? "") ?? 300 }

    nonisolated(unsafe) static let hostileValues: [Any] = [NSNull(), "", "x", -1, 0, 1, 65_535, 65_536, Int.max, Int64.min, 1e300, [], [1, 2], ["a": 1], true, "pre-fix"]

    func mutateJSON(_ obj: inout Any, _ rng: inout SplitMix64) {
        if var d = obj as? [String: Any], !d.isEmpty {
            let keys = d.keys.sorted()
            let k = keys[rng.below(keys.count)]
            switch rng.below(4) {
            case 0: d.removeValue(forKey: k)
            case 1: d[k] = Self.hostileValues[rng.below(Self.hostileValues.count)]
            default:
                var inner = d[k]!
                mutateJSON(&inner, &rng)
                d[k] = inner
            }
            obj = d
        } else if var a = obj as? [Any], !a.isEmpty {
            let i = rng.below(a.count)
            switch rng.below(3) {
            case 0: a.remove(at: i)
            case 1: a[i] = Self.hostileValues[rng.below(Self.hostileValues.count)]
            default: a.append(contentsOf: a.prefix(rng.below(4)))
            }
            obj = a
        } else {
            obj = Self.hostileValues[rng.below(Self.hostileValues.count)]
        }
    }

    func mutateBytes(_ data: Data, _ rng: inout SplitMix64) -> Data {
        var b = [UInt8](data)
        guard !b.isEmpty else { return Data([0x7b]) }
        switch rng.below(3) {
        case 0: b = Array(b.prefix(rng.below(b.count)))
        case 1: b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        default: b.insert(contentsOf: (0..<(1 + rng.below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: rng.below(b.count))
        }
        return Data(b)
    }

    @Test func hostileTracesLoadOrGiveAnInputError() throws {
        let corpus = try CheckedInTraces.all()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 2026_11_22)
        var loaded = 0, rejected = 0, replayed = 0
        for i in 0..<Self.iterations {
            let (name, base) = corpus[rng.below(corpus.count)]
            let original = try Data(contentsOf: CheckedInTraces.directory.appendingPathComponent(name))
            var data: Data
            if rng.below(3) == 0 {
                data = mutateBytes(original, &rng)
            } else {
                var obj = try JSONSerialization.jsonObject(with: original)
                for _ in 0..<(1 + rng.below(3)) { mutateJSON(&obj, &rng) }
                data = (try? JSONSerialization.data(withJSONObject: obj, options: [.fragmentsAllowed])) ?? Data("null".utf8)
            }
            let path = dir.appendingPathComponent("m\(i).json").path
            try data.write(to: URL(fileURLWithPath: path))
            do {
                let t = try TraceFile.load(from: path)
                loaded += 1
                // Replay what loads, if its world stays small (a mutant may ask
                // for a million pages, legally).
                if t.selection.sizes.pages <= 4 * base.selection.sizes.pages && t.selection.sizes.vcpus <= 8 && t.selection.sizes.cpus <= 16 && t.selection.sizes.opsPerVCPU <= 64 {
                    _ = try? Runner.replay(t)
                    replayed += 1
                }
            } catch {
                rejected += 1
                #expect(!error.message.isEmpty && !error.message.contains("\n"), "\(name) mutant \(i): \(error.message)")
            }
        }
        #expect(loaded + rejected == Self.iterations)
        #expect(rejected > Self.iterations / 2, "most mutants should be rejected (\(rejected) of \(Self.iterations))")
        _ = replayed
    }
}
