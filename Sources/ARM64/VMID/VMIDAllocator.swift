// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The arm64 VMID allocator, arch/arm64/kvm/vmid.c of v5.18-v6.6 (text read:
/// torvalds/linux, the v6.1-v6.6 form; v5.18's bodies are the same), a port of
/// the ASID allocator of arch/arm64/mm/context.c. `update(_:cpu:)` returns the
/// v6.7-v6.13 `bool` of 5eba523e1e5e; callers of the `void` forms (v5.18-v6.6,
/// v6.14+) ignore it.
///
/// A VMID (`KVMVMID.id`) is `generation | idx`, idx in 1..<2^bits; the
/// generation starts at 2^bits and grows by 2^bits at each rollover. Index 0 is
/// never handed out.
///
/// Locking:
/// - `cpu_vmid_lock` (raw, IRQs off) covers `vmid_map`, `cur_idx`,
///   `reserved_vmids[*]`, the generation bump and every write of a
///   `kvm_vmid->id`; `new_vmid()`, `flush_context()` and
///   `check_update_reserved_vmid()` assert it.
/// - `active_vmids[cpu]` is an atomic: its own CPU (preemption disabled) sets
///   it or cmpxchgs it on the fast path, with no lock; a rollover xchgs every
///   CPU's to 0 under the lock.
/// - `vmid_generation` is an atomic read with no lock.
public final class VMIDAllocator: @unchecked Sendable {
    public let engine: SimEngine
    /// kvm_arm_vmid_bits.
    public let vmidBits: Int
    /// num_possible_cpus().
    public let cpus: Int
    /// VMID_FIRST_VERSION = NUM_USER_VMIDS = 1 << kvm_arm_vmid_bits.
    public let firstVersion: UInt64
    /// ~VMID_MASK = GENMASK(kvm_arm_vmid_bits - 1, 0): vmid2idx().
    public let indexMask: UInt64
    /// VMID_ACTIVE_INVALID (= VMID_FIRST_VERSION: generation 1, idx 0), what
    /// `kvm_arm_vmid_clear_active()` leaves in active_vmids.
    public var activeInvalid: UInt64 { firstVersion }
    /// NUM_USER_VMIDS.
    public var numUserVMIDs: Int { Int(firstVersion) }

    /// cpu_vmid_lock (DEFINE_RAW_SPINLOCK, taken with raw_spin_lock_irqsave()).
    public let cpuVMIDLock: SpinLock
    /// __kvm_flush_vm_context (TLBI ALLE1IS; DSB ISH), called synchronously by
    /// the CPU that rolls over, with cpu_vmid_lock held.
    private let flushVMContext: @Sendable () -> Void

    /// vmid_generation (atomic64_t).
    private let vmidGeneration: AtomicWords
    /// DEFINE_PER_CPU(atomic64_t, active_vmids).
    private let activeVMIDs: AtomicWords
    /// DEFINE_PER_CPU(u64, reserved_vmids): under cpu_vmid_lock (not kernel
    /// words: no other CPU touches them unlocked, oracles peek).
    private let reservedVMIDs: AtomicWords
    /// vmid_map, NUM_USER_VMIDS bits: under cpu_vmid_lock.
    private let vmidMap: AtomicWords
    /// new_vmid()'s `static u32 cur_idx = 1`: under cpu_vmid_lock.
    private let curIdx: AtomicWords
    /// The model's counters: cpu_vmid_lock acquisitions by `update`, rollovers.
    private let counters: AtomicWords

    public static let markFastPath = CoverageMark("arm64: kvm_arm_vmid_update fast path (cmpxchg of active_vmids)")
    public static let markSlowPath = CoverageMark("arm64: kvm_arm_vmid_update takes cpu_vmid_lock")
    public static let markNewVMID = CoverageMark("arm64: new_vmid")
    public static let markKeepReserved = CoverageMark("arm64: new_vmid keeps a reserved VMID (check_update_reserved_vmid hit)")
    public static let markKeepIndex = CoverageMark("arm64: new_vmid keeps the old index (bit still free)")
    public static let markRollover = CoverageMark("arm64: VMID rollover (flush_context)")

    /// kvm_arm_vmid_alloc_init(): the generation starts at VMID_FIRST_VERSION;
    /// WARN_ON(NUM_USER_VMIDS - 1 <= num_possible_cpus()) is `kvm-warn`.
    /// `flushVMContext` is kvm_call_hyp(__kvm_flush_vm_context).
    public init(engine: SimEngine, vmidBits: Int, cpus: Int, flushVMContext: @escaping @Sendable () -> Void) {
        precondition((1...16).contains(vmidBits) && cpus >= 1)
        self.engine = engine
        self.vmidBits = vmidBits
        self.cpus = cpus
        firstVersion = UInt64(1) << vmidBits
        indexMask = firstVersion - 1
        self.flushVMContext = flushVMContext
        cpuVMIDLock = SpinLock("raw_spin_lock_irqsave(&cpu_vmid_lock)", engine: engine)
        vmidGeneration = AtomicWords(count: 1, initial: UInt64(1) << vmidBits, kernel: true)
        activeVMIDs = AtomicWords(count: cpus, kernel: true)
        reservedVMIDs = AtomicWords(count: cpus)
        vmidMap = AtomicWords(count: ((1 << vmidBits) + 63) / 64)
        curIdx = AtomicWords(count: 1, initial: 1)
        counters = AtomicWords(count: 2)
        engine.kvmWarnOn((1 << vmidBits) - 1 <= cpus,
                         "WARN_ON(NUM_USER_VMIDS - 1 <= num_possible_cpus()) in kvm_arm_vmid_alloc_init(): \((1 << vmidBits) - 1) VMIDs for \(cpus) CPUs")
    }

    deinit {
        vmidGeneration.free(); activeVMIDs.free(); reservedVMIDs.free()
        vmidMap.free(); curIdx.free(); counters.free()
    }

    // MARK: - the kernel's functions

    /// kvm_arm_vmid_update() (v5.18-v6.6; the return value is v6.7-v6.13's
    /// `updated`: true only if this call ran new_vmid()). Runs on `cpu` with
    /// preemption disabled (the caller's rule). Fast path: no lock, a cmpxchg
    /// of this CPU's active_vmids; slow path under cpu_vmid_lock.
    public func update(_ kvmVMID: KVMVMID, cpu: Int) -> Bool {
        var vmid = kvmVMID.id.load(0)
        // Another CPU may allocate for this VM or roll over before we read active_vmids.
        engine.point("kvm_arm_vmid_update: kvm_vmid->id read")
        let oldActiveVMID = activeVMIDs.load(cpu)
        if oldActiveVMID != 0 {
            // ... or between that read and vmid_gen_match()'s read of vmid_generation.
            engine.point("kvm_arm_vmid_update: active_vmids read")
            if generationMatches(vmid) {
                // ... or between the generation check and the cmpxchg: a rollover's
                // xchg of active_vmids to 0 makes the cmpxchg return 0.
                engine.point("kvm_arm_vmid_update: vmid_gen_match(), before cmpxchg")
                if cmpxchg(activeVMIDs, cpu, oldActiveVMID, vmid) != 0 {
                    engine.cover(Self.markFastPath)
                    return false
                }
            }
        }

        cpuVMIDLock.lock()
        counters.add(0, 1)
        engine.cover(Self.markSlowPath)
        var updated = false
        // Check that our VMID belongs to the current generation.
        vmid = kvmVMID.id.load(0)
        if !generationMatches(vmid) {
            vmid = newVMID(kvmVMID)
            updated = true
        }
        activeVMIDs.store(cpu, vmid)
        engine.event("kvm_arm_vmid_update on cpu\(cpu): active_vmids = \(describe(vmid))\(updated ? " (new_vmid)" : "")")
        cpuVMIDLock.unlock()
        return updated
    }

    /// kvm_arm_vmid_clear_active(): at vcpu_put (v5.18+, 100b4f092f87), on
    /// `cpu` with preemption disabled: active_vmids = VMID_ACTIVE_INVALID, so a
    /// rollover reserves nothing for this CPU. No lock.
    public func clearActive(cpu: Int) {
        activeVMIDs.store(cpu, activeInvalid)
    }

    /// new_vmid(): keep the VM's index if a CPU reserved it at the last
    /// rollover or it is still free; else the next free index from cur_idx,
    /// rolling over when there is none. cpu_vmid_lock held.
    private func newVMID(_ kvmVMID: KVMVMID) -> UInt64 {
        cpuVMIDLock.assertHeld("new_vmid()")
        engine.cover(Self.markNewVMID)
        var vmid = kvmVMID.id.load(0)
        var generation = vmidGeneration.load(0)

        if vmid != 0 {
            let newVMID = generation | (vmid & indexMask)
            // If our current VMID was active during a rollover, we can continue
            // to use it and this was just a false alarm.
            if checkUpdateReservedVMID(vmid, newVMID) {
                engine.cover(Self.markKeepReserved)
                kvmVMID.id.store(0, newVMID)
                return newVMID
            }
            // We had a valid VMID in a previous life, so try to re-use it if possible.
            if !testAndSetBit(Int(vmid & indexMask)) {
                engine.cover(Self.markKeepIndex)
                kvmVMID.id.store(0, newVMID)
                return newVMID
            }
        }

        var idx = findNextZeroBit(from: Int(curIdx.load(0)))
        if idx == numUserVMIDs {
            // We're out of VMIDs, so increment the global generation count.
            generation = vmidGeneration.add(0, firstVersion)
            flushContext()
            // We have more VMIDs than CPUs, so this will always succeed.
            idx = findNextZeroBit(from: 1)
        }

        // set_vmid:
        if idx < numUserVMIDs {
            setBit(idx)
        } else {
            // Only when kvm_arm_vmid_alloc_init()'s WARN fired: the kernel's
            // __set_bit() writes past vmid_map and idx2vmid() gives index 0.
            engine.kvmWarnOn(true, "new_vmid(): no free VMID after a rollover (\(cpus) CPUs reserve all \(numUserVMIDs - 1)): __set_bit(NUM_USER_VMIDS) past vmid_map, VMID 0 handed out")
        }
        curIdx.store(0, UInt64(idx))
        vmid = (UInt64(idx) & indexMask) | generation
        kvmVMID.id.store(0, vmid)
        return vmid
    }

    /// flush_context(): clear vmid_map; every CPU's active VMID (or, if it
    /// was 0, its previous reserved one) becomes its reserved VMID and keeps
    /// its bit; then __kvm_flush_vm_context (TLBI ALLE1IS) on this CPU,
    /// synchronously. cpu_vmid_lock held.
    private func flushContext() {
        cpuVMIDLock.assertHeld("flush_context()")
        engine.cover(Self.markRollover)
        counters.add(1, 1)
        for w in 0..<vmidMap.count { vmidMap.store(w, 0) }       // bitmap_clear()
        for cpu in 0..<cpus {
            var vmid = activeVMIDs.exchange(cpu, 0)               // atomic64_xchg_relaxed()
            // Preserve reserved VMID.
            if vmid == 0 { vmid = reservedVMIDs.load(cpu) }
            setBit(Int(vmid & indexMask))
            reservedVMIDs.store(cpu, vmid)
        }
        engine.event("flush_context: generation \(vmidGeneration.load(0) >> UInt64(vmidBits)), reserved_vmids = [\((0..<cpus).map { describe(reservedVMIDs.load($0)) }.joined(separator: ", "))]")
        // Broadcast TLB flush + I-cache invalidation over the inner shareable domain.
        flushVMContext()
    }

    /// check_update_reserved_vmid(): every CPU that reserved `vmid` at the
    /// last rollover now reserves `newVMID` (the same index in the current
    /// generation). cpu_vmid_lock held.
    private func checkUpdateReservedVMID(_ vmid: UInt64, _ newVMID: UInt64) -> Bool {
        cpuVMIDLock.assertHeld("check_update_reserved_vmid()")
        var hit = false
        for cpu in 0..<cpus where reservedVMIDs.load(cpu) == vmid {
            hit = true
            reservedVMIDs.store(cpu, newVMID)
        }
        return hit
    }

    /// atomic64_cmpxchg_relaxed(): the value found (== `old` when it stored).
    /// A failed compare-and-swap is followed by a load that linearises it.
    private func cmpxchg(_ w: AtomicWords, _ i: Int, _ old: UInt64, _ new: UInt64) -> UInt64 {
        while true {
            if w.cas(i, old, new) { return old }
            let found = w.load(i)
            if found != old { return found }
        }
    }

    // MARK: - vmid_map (cpu_vmid_lock held)

    private func setBit(_ bit: Int) { vmidMap.store(bit >> 6, vmidMap.load(bit >> 6) | (1 << UInt64(bit & 63))) }

    /// __test_and_set_bit(): whether the bit was set.
    private func testAndSetBit(_ bit: Int) -> Bool {
        let word = vmidMap.load(bit >> 6), mask = UInt64(1) << UInt64(bit & 63)
        if word & mask != 0 { return true }
        vmidMap.store(bit >> 6, word | mask)
        return false
    }

    /// find_next_zero_bit(vmid_map, NUM_USER_VMIDS, from): NUM_USER_VMIDS if none.
    private func findNextZeroBit(from: Int) -> Int {
        var bit = from
        while bit < numUserVMIDs {
            let free = ~vmidMap.load(bit >> 6) & (~UInt64(0) << UInt64(bit & 63))
            if free != 0 { return min((bit & ~63) + free.trailingZeroBitCount, numUserVMIDs) }
            bit = (bit & ~63) + 64
        }
        return numUserVMIDs
    }

    // MARK: - reads for callers and oracles

    /// kvm_get_vttbr()'s VMID field: `(id << VTTBR_VMID_SHIFT) &
    /// VTTBR_VMID_MASK(kvm_arm_vmid_bits)`, i.e. the index; the generation bits
    /// never reach the hardware.
    public func vttbrVMID(_ id: UInt64) -> Int { Int(id & indexMask) }

    /// vmid_gen_match(): `id` is of the current generation (reads
    /// vmid_generation, no lock).
    public func generationMatches(_ id: UInt64) -> Bool {
        (id ^ vmidGeneration.load(0)) >> UInt64(vmidBits) == 0
    }

    /// active_vmids[cpu], as an oracle sees it (no scheduling point).
    public func active(cpu: Int) -> UInt64 { activeVMIDs.peek(cpu) }
    /// reserved_vmids[cpu], as an oracle sees it.
    public func reserved(cpu: Int) -> UInt64 { reservedVMIDs.peek(cpu) }
    /// vmid_generation, as an oracle sees it.
    public var generation: UInt64 { vmidGeneration.peek(0) }
    /// Whether index `idx` is set in vmid_map, as an oracle sees it.
    public func isAllocated(index idx: Int) -> Bool { vmidMap.peek(idx >> 6) & (UInt64(1) << UInt64(idx & 63)) != 0 }
    /// How many times `update` took cpu_vmid_lock (its slow path).
    public var lockAcquisitions: UInt64 { counters.peek(0) }
    /// How many rollovers (flush_context()) there were.
    public var rollovers: UInt64 { counters.peek(1) }

    /// "idx 3 gen 2" for narration.
    public func describe(_ id: UInt64) -> String { "idx \(id & indexMask) gen \(id >> UInt64(vmidBits))" }
}
