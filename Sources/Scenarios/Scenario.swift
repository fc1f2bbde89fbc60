// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Sizes and knobs of one scenario run. Every field has a scenario default; the
/// CLI overrides `cpus`, `vcpus` and `pages`.
public struct ScenarioConfig: Codable, Sendable, Equatable {
    public var cpus: Int
    public var vcpus: Int
    public var pages: Int
    /// Guest operations per vcpu in one deterministic schedule.
    public var opsPerVCPU: Int
    /// Host mm events per host event source in one deterministic schedule.
    public var hostEventsPerSource: Int
    /// Host CPUs that run a host event source (from cpu0 up).
    public var hostEventSources: Int
    /// Index bits per GPA page-table level (small values make table frees frequent).
    public var tableBits: Int
    public var tlbSize: Int
    /// Host ASID width (MIPS trap-and-emulate scenarios): small, so cycles wrap.
    public var asidBits: Int
    /// Guest processes (guest ASIDs 1...n) per vcpu (trap-and-emulate scenarios).
    public var guestProcesses: Int
    /// Hardware threads per physical core sharing one TLB (PPC scenarios; `cpus`
    /// counts threads, so there are `cpus / threadsPerCore` cores).
    public var threadsPerCore: Int
    /// Vcpus per vcore, the guest's threads per core (PPC scenarios).
    public var vcpusPerVcore: Int
    /// Percent of the guest's invalidating hcalls that carry H_LOCAL (PPC scenarios).
    public var hLocalPercent: Int

    public init(cpus: Int, vcpus: Int, pages: Int, opsPerVCPU: Int, hostEventsPerSource: Int,
                hostEventSources: Int, tableBits: Int, tlbSize: Int, asidBits: Int = 8, guestProcesses: Int = 2,
                threadsPerCore: Int = 4, vcpusPerVcore: Int = 1, hLocalPercent: Int = 0) {
        self.cpus = cpus; self.vcpus = vcpus; self.pages = pages; self.opsPerVCPU = opsPerVCPU
        self.hostEventsPerSource = hostEventsPerSource; self.hostEventSources = hostEventSources
        self.tableBits = tableBits; self.tlbSize = tlbSize; self.asidBits = asidBits; self.guestProcesses = guestProcesses
        self.threadsPerCore = threadsPerCore; self.vcpusPerVcore = vcpusPerVcore; self.hLocalPercent = hLocalPercent
    }

    enum CodingKeys: String, CodingKey {
        case cpus, vcpus, pages, opsPerVCPU, hostEventsPerSource, hostEventSources, tableBits, tlbSize, asidBits, guestProcesses
        case threadsPerCore, vcpusPerVcore, hLocalPercent
    }

    /// Decodes trace files written before the PPC fields existed (they default).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(cpus: try c.decode(Int.self, forKey: .cpus), vcpus: try c.decode(Int.self, forKey: .vcpus),
                  pages: try c.decode(Int.self, forKey: .pages), opsPerVCPU: try c.decode(Int.self, forKey: .opsPerVCPU),
                  hostEventsPerSource: try c.decode(Int.self, forKey: .hostEventsPerSource),
                  hostEventSources: try c.decode(Int.self, forKey: .hostEventSources),
                  tableBits: try c.decode(Int.self, forKey: .tableBits), tlbSize: try c.decode(Int.self, forKey: .tlbSize),
                  asidBits: try c.decode(Int.self, forKey: .asidBits), guestProcesses: try c.decode(Int.self, forKey: .guestProcesses),
                  threadsPerCore: try c.decodeIfPresent(Int.self, forKey: .threadsPerCore) ?? 4,
                  vcpusPerVcore: try c.decodeIfPresent(Int.self, forKey: .vcpusPerVcore) ?? 1,
                  hLocalPercent: try c.decodeIfPresent(Int.self, forKey: .hLocalPercent) ?? 0)
    }

    /// Limits that keep a run meaningful; violations are bad input (exit 2).
    public func validate() throws(InputError) {
        guard (1...64).contains(cpus) else { throw InputError("--cpus must be between 1 and 64 (got \(cpus))") }
        guard (1...256).contains(vcpus) else { throw InputError("--vcpus must be between 1 and 256 (got \(vcpus))") }
        guard (1...(1 << 20)).contains(pages) else { throw InputError("--pages must be between 1 and 1048576 (got \(pages))") }
        guard (0...cpus).contains(hostEventSources) else { throw InputError("host event sources (\(hostEventSources)) must be between 0 and --cpus \(cpus)") }
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...12).contains(tableBits) else { throw InputError("table bits must be between 1 and 12") }
        guard (1...8).contains(asidBits) else { throw InputError("ASID bits must be between 1 and 8") }
        guard (1...64).contains(guestProcesses) else { throw InputError("guest processes must be between 1 and 64") }
        guard (1...8).contains(threadsPerCore) else { throw InputError("--threads-per-core must be between 1 and 8 (got \(threadsPerCore))") }
        guard (1...threadsPerCore).contains(vcpusPerVcore) else {
            throw InputError("--vcpus-per-vcore must be between 1 and --threads-per-core \(threadsPerCore) (got \(vcpusPerVcore))")
        }
        guard (0...100).contains(hLocalPercent) else { throw InputError("--h-local-percent must be between 0 and 100 (got \(hLocalPercent))") }
        guard (1...(1 << 16)).contains(opsPerVCPU), (0...(1 << 16)).contains(hostEventsPerSource) else {
            throw InputError("operations per actor out of range")
        }
    }
}

extension ScenarioConfig {
    /// Rejects more guest pages than a 3-level GPA table of `bits` index bits per
    /// level can map (the scenarios keep tables tiny on purpose, so frees happen).
    func checkPagesFit(tableBits bits: Int, scenario: String) throws(InputError) {
        let span = 1 << (3 * bits)
        guard pages <= span else {
            throw InputError("--pages \(pages) is more than \(scenario)'s GPA table (3 levels of \(bits) bits) maps: at most \(span)")
        }
    }
}

/// A bad flag, scenario file or trace file: one line for the user, exit status 2.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One world built for one schedule (deterministic) or one run (parallel).
public protocol ScenarioWorld: AnyObject {
    /// Spawns every actor's work on the engine. `budget`: nil runs each actor's
    /// deterministic quota; otherwise actors loop until the engine is asked to stop.
    func start(endless: Bool)
    /// Work units done (guest operations plus host events).
    var completedWork: Int { get }
    /// Called after the run ends (e.g. to drain RCU callbacks).
    func finish()
    /// Named protocol counters of this world (e.g. TLB flushes), summed by the runner.
    var counters: [String: Int] { get }
}

extension ScenarioWorld {
    public var counters: [String: Int] { [:] }
}

/// A scenario: a small model configuration with a workload and its oracles.
public protocol Scenario: Sendable {
    var name: String { get }
    var summary: String { get }
    var variants: [String] { get }
    var oracles: [String] { get }
    /// The mechanism's docs page.
    var docs: String { get }
    func defaultConfig(mode: ExecutionMode) -> ScenarioConfig
    func actorNames(_ config: ScenarioConfig) -> [String]
    func makeWorld(engine: SimEngine, variant: String, config: ScenarioConfig, seed: UInt64) -> ScenarioWorld
    /// Checks scenario-specific limits on a configuration (bad input: exit 2).
    func validate(_ config: ScenarioConfig) throws(InputError)
    /// The protocol branches a good run of this scenario should reach; a run
    /// reports their counts (zeros too) and lists those never reached.
    func coverageMarks(variant: String) -> [CoverageMark]
}

extension Scenario {
    public func validate(_ config: ScenarioConfig) throws(InputError) {}
    public func coverageMarks(variant: String) -> [CoverageMark] { [] }

    /// Host CPUs first (`cpu0...`), then vcpus (`vcpu0...`): one executor each.
    public func actorNames(_ c: ScenarioConfig) -> [String] {
        (0..<c.cpus).map { "cpu\($0)" } + (0..<c.vcpus).map { "vcpu\($0)" }
    }
}

/// Every scenario kvmsim knows, in listing order.
public enum ScenarioRegistry {
    public static let all: [any Scenario] = [
        SyncMMUScenario.race,
        SyncMMUScenario.stress,
        ASIDScenario.lazyRegen,
        ASIDScenario.gvaFlush,
        PPCTLBScenario.local,
        PPCTLBScenario.stress,
        VPAScenario.crossRegister,
        VPAScenario.stress,
        MMUSeqWrapScenario(),
        StealTimeScenario(),
    ]

    public static func named(_ name: String) throws(InputError) -> any Scenario {
        guard let s = all.first(where: { $0.name == name }) else {
            throw InputError("unknown scenario '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return s
    }
}
