// SPDX-License-Identifier: GPL-2.0-only
import Harness
import ARM64

/// The KVM-side work an arm64 world's background host CPU runs besides the
/// host mm's notifier events.
public enum Stage2KVMWork: String, CaseIterable, Codable, Sendable {
    /// Dirty logging of a VM's memslot turned on and off
    /// (KVM_SET_USER_MEMORY_REGION with KVM_MEM_LOG_DIRTY_PAGES): logging
    /// splits blocks into pages as vcpus fault, and once it is off faults put
    /// blocks back over the tables it left.
    case dirtyLog = "dirty-log"
    /// No background work (host mm events and vcpus only).
    case none
}

/// The knobs of an arm64 stage-2 world.
public struct Stage2Options: ScenarioOptions {
    /// Index bits per stage-2 table level (3 levels; a block is 2^bits pages).
    public var tableBits: Int
    /// VMs sharing the machine's CPUs and VMID space (vcpu i belongs to VM i mod vms).
    public var vms: Int
    /// Physical CPUs the vcpus are scheduled on.
    public var pcpus: Int
    /// kvm_arm_vmid_bits (the hardware's 8 or 16; small values make rollovers frequent).
    public var vmidBits: Int
    /// 1: guest RAM is hugetlbfs-backed (blocks), and the VMM may remap it as
    /// 4K pages and back (mmap(MAP_FIXED)).
    public var hugePages: Int
    /// How unlinked tables are freed: through RCU (the host) or at once (pKVM at EL2).
    public var tableFree: UnlinkedTableFree
    public var kvmWork: Stage2KVMWork

    public init(tableBits: Int = 1, vms: Int = 1, pcpus: Int = 2, vmidBits: Int = 8, hugePages: Int = 1,
                tableFree: UnlinkedTableFree = .rcu, kvmWork: Stage2KVMWork = .dirtyLog) {
        self.tableBits = tableBits; self.vms = vms; self.pcpus = pcpus; self.vmidBits = vmidBits
        self.hugePages = hugePages; self.tableFree = tableFree; self.kvmWork = kvmWork
    }

    public static let knobs: [OptionKnob<Stage2Options>] = [
        OptionKnob("table-bits", \.tableBits, help: "arm64 stage-2: index bits per table level (3 levels; a block is 2^bits pages)."),
        OptionKnob("vms", \.vms, help: "arm64 stage-2: VMs sharing the CPUs and the VMID space (vcpu i belongs to VM i mod vms)."),
        OptionKnob("pcpus", \.pcpus, help: "arm64 stage-2: physical CPUs the vcpus are scheduled on."),
        OptionKnob("vmid-bits", \.vmidBits, help: "arm64 stage-2: VMID width (8 or 16 on hardware; 1-4 make rollovers frequent; vmid.c WARNs unless 2^bits - 1 > --pcpus)."),
        OptionKnob("huge-pages", \.hugePages, help: "arm64 stage-2: 1 for hugetlbfs-backed guest RAM (blocks) that the VMM may remap as 4K pages and back."),
        OptionKnob("table-free", \.tableFree, help: "arm64 stage-2: how unlinked tables are freed: rcu (the host) or immediate (pKVM at EL2)."),
        OptionKnob("kvm-work", \.kvmWork, help: "arm64 stage-2: background KVM work on the host CPU after the event sources."),
    ]

    public func validate() throws(InputError) {
        guard (1...3).contains(tableBits) else { throw InputError("--table-bits must be between 1 and 3 (got \(tableBits))") }
        guard (1...8).contains(vms) else { throw InputError("--vms must be between 1 and 8 (got \(vms))") }
        guard (1...16).contains(pcpus) else { throw InputError("--pcpus must be between 1 and 16 (got \(pcpus))") }
        guard (1...8).contains(vmidBits) else { throw InputError("--vmid-bits must be between 1 and 8 (got \(vmidBits))") }
        guard (0...1).contains(hugePages) else { throw InputError("--huge-pages must be 0 or 1 (got \(hugePages))") }
    }

    /// Rejects guest RAM the tables cannot map, or not a whole number of
    /// blocks, and a VM without a vcpu. (Fewer VMIDs than the v5.18 allocator
    /// needs is not bad input: its kvm_arm_vmid_alloc_init() WARNs, which the
    /// kvm-warn oracle reports; the pre-5.18 allocator has no such limit.)
    func checkWorld(_ pages: Int, vcpus: Int) throws(InputError) {
        let span = 1 << (3 * tableBits), block = 1 << tableBits
        guard pages <= span else { throw InputError("--pages \(pages) is more than 3 levels of \(tableBits) bits map (\(span))") }
        guard hugePages == 0 || pages % block == 0 else {
            throw InputError("--pages \(pages) is not a whole number of blocks (\(block) pages each)")
        }
        guard vcpus >= vms else { throw InputError("--vcpus \(vcpus) leaves a VM without a vcpu (--vms \(vms))") }
    }
}
