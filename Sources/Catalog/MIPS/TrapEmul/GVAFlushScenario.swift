// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import Harness

/// Seed 001: the trap-and-emulate world on the v4.11 ASID code with GVA page
/// tables, filled on guest TLB misses from kvm_mips_map_page() and walked by
/// the host TLB refill handler.
public struct GVAFlushScenario: Scenario {
    public typealias Variant = GVAFlushVariant
    public typealias Options = TrapEmulOptions

    public init() {}
    public let name = "gva-flush"
    public let summary = "MIPS trap-and-emulate GVA page tables across guest ASID changes (seed 001, on the v4.11 ASID code)"
    public let docs = "docs/mechanisms/gva-page-tables.md"
    public var oracles: [Oracle] { StaleASIDOracle.oracles + MIPSMMU.oracles }
    /// Guest frames map through a GPA table of 3 levels of this many bits.
    static let gpaTableBits = 3

    public func defaultConfig(mode: ExecutionMode) -> Config { ASIDLazyRegenScenario().defaultConfig(mode: mode) }

    public func validate(_ c: Config) throws(InputError) {
        try ASIDLazyRegenScenario.checkLowUserPages(c.pages, scenario: name)
        // Every guest frame (each process's mapped pages, and kseg0's) must fit the GPA table.
        let gfns = TrapEmulGuestLayout(lowUserPages: c.pages).gfns(guestProcesses: c.guestProcesses)
        guard gfns <= 1 << (3 * Self.gpaTableBits) else {
            throw InputError("--pages \(c.pages) gives \(gfns) guest frames, more than \(name)'s GPA table (3 levels of \(Self.gpaTableBits) bits) maps: at most \(1 << (3 * Self.gpaTableBits))")
        }
    }

    public func coverageMarks(variant: Variant) -> [CoverageMark] { [TrapEmulVCPU.markNewCycle, TrapEmulVCPU.markTLBFlushRequest,
                                                                      TrapEmulVCPU.markKernelKseg0Fault, TrapEmulVCPU.markKernelMappedFault, TrapEmulVCPU.markUsegLastPage] }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        ASIDWorld(engine: engine, variant: .upstream411, gvaVariant: variant, config: config, seed: seed)
    }

    // Budget of the fixed variant (issue 20, class 3; measured 2026-12-07 at
    // 52b2d18): the planted bugs random schedules of one length found last, a
    // TLB-flush request that zeroes only the user contexts and the GPA
    // kernel-range flush ending a page short, need 65-5,372 schedules of
    // length 1 (9 seeds) but 14-454 over lengths 1,2,4,8 (16 seeds): the
    // longer schedules give a flush request time to meet a kernel-mode
    // access. 2,000 over lengths 1,2,4,8 (was 20,000 of length 1: 10 s of
    // the suite's 28).
    public var cases: [Case] {[
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "seed 001: GVA page tables not flushed on guest ASID change"),
        Case(.patched, expects: .clean, schedules: 2_000, lengths: RunOptions.searchLengths,
             note: "seed 001"),
        // PCT at every kernel-memory access, one case per fixed variant (issue 20, classes 1 and 3).
        Case(.patched, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, note: "seed 001, PCT at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(GVAFlushScenario(), into: $0) }
