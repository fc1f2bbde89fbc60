// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// A physical CPU as stage-2 translation sees it: its VTTBR_EL2 (the stage-2
/// table and the VMID the guest runs with), its TLB of stage-2 translations
/// tagged by VMID, and the state KVM's run loop gives it (interrupts masked,
/// in the guest, the vcpu loaded on it).
///
/// The TLB holds, per VMID and IPA page, the translation the CPU's walk last
/// filled (a block fills every page of it, each entry remembering its level:
/// a TLBI of any IPA in a block removes the block's entries, as the one
/// hardware entry would go). A TLB of unlimited size: eviction would only hide
/// stale entries. Entries are tagged with the VMID field of VTTBR, so a guest
/// whose VTTBR carries another VM's VMID uses that VM's translations.
///
/// Locking: the CPU's own thread (the vcpu loaded on it) fills its TLB and
/// writes VTTBR; TLBIs of other CPUs (`InnerShareableDomain`) clear entries
/// with atomics, complete when they return (the DSB ISH after TLBI ...IS).
public final class ARM64CPU: @unchecked Sendable {
    public let index: Int
    /// Entries per VMID (guest pages of the largest VM).
    let pagesPerVMID: Int
    let vmids: Int
    enum TLBField: Int, CaseIterable {
        /// The VM whose table filled it (+1; 0 = no entry): the model's record, for oracles.
        case filledBy
        case pfn, writable, executable, level
        /// The aging clock of the VM's MMUOracle at the fill (I4).
        case agingStamp
    }
    let tlb: AtomicRecords<TLBField>
    /// A bit per VMID that may have entries (set by `fill`, cleared when the
    /// VMID's entries are), so that TLBI ALLE1 visits the VMIDs in use, not
    /// all 2^vmid-bits of them (it was 8% of a stage2-race schedule's
    /// instructions). The model's bookkeeping, not hardware state; under
    /// `translation`, as every fill and invalidation.
    let filledVMIDs: AtomicWords
    /// A bit per VMID whose entries a fill wrote since the world was built
    /// (never cleared by a TLBI, which clears only `filledBy`): what a world
    /// reset in place must clear (`resetForReuse`). Under `translation`.
    private var touchedVMIDs: [UInt64]
    enum Reg: Int, CaseIterable {
        /// VTTBR_EL2: the VM whose stage-2 table it points at (+1; 0 = none) and its VMID field.
        case vttbrVM, vttbrVMID
        /// The vcpu loaded on this CPU (+1; 0 = none): kvm_arch_vcpu_load() .. _put().
        case loaded
        /// The VM the CPU is running in the guest (+1; 0 = not in the guest).
        case inGuest
        /// local_irq_disable() .. local_irq_enable() of the run loop, and how
        /// many times the CPU left such a section (an IPI is taken then).
        case irqsOff, irqEnables
    }
    let regs: AtomicRecords<Reg>
    /// What makes a TLBI's DSB wait for the translations in flight on this
    /// CPU: the CPU's access (TLB lookup and use, or walk and fill) holds it,
    /// and so does each TLB invalidation of this CPU. A real lock with no
    /// scheduling point: in deterministic mode the access is one step anyway.
    let translation = RawMutex()

    /// For lockdep reports (`translation` held where the rule says).
    let engine: SimEngine

    init(index: Int, vmids: Int, pagesPerVMID: Int, engine: SimEngine) {
        self.index = index
        self.engine = engine
        self.vmids = vmids
        self.pagesPerVMID = pagesPerVMID
        tlb = AtomicRecords(count: vmids * pagesPerVMID)
        filledVMIDs = AtomicWords(count: (vmids + 63) / 64)
        touchedVMIDs = Array(repeating: 0, count: (vmids + 63) / 64)
        regs = AtomicRecords(count: 1, kernel: true)
        // The TLB is empty when a world's build ends (nothing runs in a build):
        // a reset clears the VMIDs a schedule touched instead of copying the
        // whole TLB back (98 KB for stage2-race).
        WorldMemory.limitRecord(of: tlb.words) { [self] in
            precondition(touchedVMIDs.allSatisfy { $0 == 0 }, "ARM64CPU: a TLB filled while its world was built")
            return 0
        }
    }

    /// A world reset in place: every entry a fill wrote since the build
    /// (all fields of the touched VMIDs) back to zero, as built. Between
    /// schedules: nothing runs.
    func resetForReuse() {
        for w in touchedVMIDs.indices {
            var bits = touchedVMIDs[w]
            while bits != 0 {
                let vmid = w * 64 + bits.trailingZeroBitCount
                let first = tlb.index(slot(vmid: vmid, gfn: 0), .filledBy)
                (tlb.words.base + first).update(repeating: 0, count: pagesPerVMID * tlb.stride)
                bits &= bits - 1
            }
            touchedVMIDs[w] = 0
        }
    }

    deinit { tlb.free(); filledVMIDs.free(); regs.free() }

    @inline(__always) func slot(vmid: Int, gfn: Int) -> Int { vmid * pagesPerVMID + gfn }
    /// `vmid`'s bit in `filledVMIDs`: its word and mask.
    @inline(__always) func filledBit(_ vmid: Int) -> (word: Int, mask: UInt64) { (vmid / 64, 1 << (vmid % 64)) }

    /// VTTBR_EL2's VMID field.
    public var vttbrVMID: Int { Int(regs.load(0, .vttbrVMID)) }
    /// The VM this CPU runs in the guest now, if any (oracles: peeks).
    public var inGuestVM: Int? { let v = regs.peek(0, .inGuest); return v == 0 ? nil : Int(v - 1) }
    var peekVTTBRVMID: Int { Int(regs.peek(0, .vttbrVMID)) }

    /// __load_stage2(): write VTTBR_EL2 (the VM's table and `vmid`).
    func loadStage2(vm: Int, vmid: Int) {
        regs.store(0, .vttbrVM, UInt64(vm + 1))
        regs.store(0, .vttbrVMID, UInt64(vmid))
    }

    /// The caller's access or invalidation holds `translation` (`function`, a
    /// hardware step, needs it), or lockdep reports it.
    @inline(__always)
    func assertTranslationHeld(_ function: StaticString) {
        engine.lockdepAssert(translation.isHeldByCaller, "\(function) on CPU \(index) without its translation lock")
    }

    /// The TLB entry of `gfn` under `vmid`, if any. The caller's access holds
    /// `translation`.
    func tlbEntry(vmid: Int, gfn: Int) -> (vm: Int, pfn: Int, writable: Bool, executable: Bool, agingStamp: UInt64)? {
        assertTranslationHeld("TLB lookup")
        let s = slot(vmid: vmid, gfn: gfn)
        let by = tlb.load(s, .filledBy)
        guard by != 0 else { return nil }
        return (Int(by - 1), Int(tlb.load(s, .pfn)), tlb.load(s, .writable) != 0, tlb.load(s, .executable) != 0, tlb.load(s, .agingStamp))
    }

    /// Fill the TLB from a walk of VM `vm`'s table: `pages` entries from
    /// `firstGfn` (a block fills every page of it) mapping from `pfn`. The
    /// caller's access holds `translation`.
    func fill(vmid: Int, vm: Int, firstGfn: Int, pages: Int, pfn: Int, level: Int, writable: Bool, executable: Bool, agingStamp: UInt64) {
        assertTranslationHeld("TLB fill")
        let (w, mask) = filledBit(vmid), bits = filledVMIDs.loadRelaxed(w)
        if bits & mask == 0 { filledVMIDs.storeRelaxed(w, bits | mask) }
        touchedVMIDs[w] |= mask
        for i in 0..<pages where firstGfn + i < pagesPerVMID {
            let s = slot(vmid: vmid, gfn: firstGfn + i)
            tlb.store(s, .pfn, UInt64(pfn + i))
            tlb.store(s, .writable, writable ? 1 : 0)
            tlb.store(s, .executable, executable ? 1 : 0)
            tlb.store(s, .level, UInt64(level))
            tlb.store(s, .agingStamp, agingStamp)
            tlb.store(s, .filledBy, UInt64(vm + 1))
        }
    }

    /// TLBI IPAS2E1 for one IPA page under `vmid`: its entry, and every entry
    /// of a block that covers it (`blockPages`-aligned).
    func invalidateIPA(vmid: Int, gfn: Int, blockPages: Int) {
        guard vmid < vmids else { return }
        let first = gfn / blockPages * blockPages
        translation.withLock {
            for g in first..<min(first + blockPages, pagesPerVMID) {
                let s = slot(vmid: vmid, gfn: g)
                guard tlb.load(s, .filledBy) != 0 else { continue }
                if g == gfn || tlb.load(s, .level) < 3 { tlb.store(s, .filledBy, 0) }
            }
        }
    }

    /// TLBI VMALLS12E1: every entry of `vmid`.
    func invalidateVMID(_ vmid: Int) {
        guard vmid < vmids else { return }
        translation.withLock { clearVMID(vmid) }
    }

    private func clearVMID(_ vmid: Int) {
        assertTranslationHeld("TLBI (a VMID's entries)")
        let (w, mask) = filledBit(vmid), bits = filledVMIDs.loadRelaxed(w)
        guard bits & mask != 0 else { return }
        for g in 0..<pagesPerVMID where tlb.load(slot(vmid: vmid, gfn: g), .filledBy) != 0 {
            tlb.store(slot(vmid: vmid, gfn: g), .filledBy, 0)
        }
        filledVMIDs.storeRelaxed(w, bits & ~mask)
    }

    /// TLBI ALLE1: every entry.
    func invalidateAll() {
        translation.withLock {
            for w in 0..<(vmids + 63) / 64 {
                var bits = filledVMIDs.loadRelaxed(w)
                while bits != 0 {
                    clearVMID(w * 64 + bits.trailingZeroBitCount)
                    bits &= bits - 1
                }
            }
        }
    }
}

/// The CPUs a broadcast TLBI reaches (the inner-shareable domain): TLBI ...IS
/// followed by DSB ISH is complete on every one of them when it returns. Also
/// the machine-wide operations of the run loop (force_vm_exit()).
public final class InnerShareableDomain: @unchecked Sendable {
    public let engine: SimEngine
    public let cpus: [ARM64CPU]
    /// Pages of a stage-2 block (TLBIs by IPA remove a block's entries).
    let blockPages: Int

    /// A world reset in place: every CPU's TLB as built (empty).
    public func resetForReuse() { for c in cpus { c.resetForReuse() } }

    public init(engine: SimEngine, cpus: Int, vmids: Int, pagesPerVMID: Int, blockPages: Int) {
        self.engine = engine
        self.blockPages = blockPages
        self.cpus = (0..<cpus).map { ARM64CPU(index: $0, vmids: vmids, pagesPerVMID: pagesPerVMID, engine: engine) }
    }

    /// __kvm_tlb_flush_vmid_ipa(): TLBI IPAS2E1IS + TLBI VMALLE1IS, DSB ISH.
    func tlbiIPA(vmid: Int, gfns: Range<Int>) {
        engine.event("tlbi ipas2e1is vmid \(vmid) IPA pages \(gfns.lowerBound)..<\(gfns.upperBound); dsb ish")
        for c in cpus { for g in gfns { c.invalidateIPA(vmid: vmid, gfn: g, blockPages: blockPages) } }
    }

    /// __kvm_tlb_flush_vmid(): TLBI VMALLS12E1IS, DSB ISH.
    func tlbiVMID(_ vmid: Int) {
        engine.event("tlbi vmalls12e1is vmid \(vmid); dsb ish")
        for c in cpus { c.invalidateVMID(vmid) }
    }

    /// __kvm_flush_vm_context(): TLBI ALLE1IS, DSB ISH (a VMID rollover).
    public func flushVMContext() {
        engine.event("tlbi alle1is; dsb ish (__kvm_flush_vm_context)")
        for c in cpus { c.invalidateAll() }
    }

    /// force_vm_exit(cpu_all_mask) (v4.x arm.c): an IPI to every CPU, waiting
    /// until each has taken it, i.e. has had interrupts enabled since: a CPU
    /// between the run loop's local_irq_disable() and its return from the
    /// guest holds the caller up.
    public func forceVMExit(from me: Int) {
        engine.event("force_vm_exit(cpu_all_mask)")
        // The epoch first, then the mask: a CPU that re-enables interrupts
        // between the two reads has taken the IPI already.
        let waits = cpus.filter { $0.index != me }.map { ($0, $0.regs.load(0, .irqEnables)) }.filter { $0.0.regs.load(0, .irqsOff) != 0 }
        guard !waits.isEmpty else { return }
        engine.waitUntil("force_vm_exit:wait") {
            waits.allSatisfy { $0.0.regs.peek(0, .irqEnables) != $0.1 }
        }
    }
}
