// SPDX-License-Identifier: GPL-2.0-only

/// A commit of the Linux kernel (torvalds/linux) that a model variant follows:
/// its code as of that commit, or as of the commit before it (`before`).
public struct KernelCommit: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The upstream short hash (12 digits), as `Fixes:` tags cite it.
    public var id: String
    public var subject: String
    /// The first release that has it ("v4.11"), if known.
    public var release: String?
    /// The variant is the code just before this commit (its parent).
    public var before: Bool

    public init(_ id: String, _ subject: String, release: String? = nil, before: Bool = false) {
        self.id = id; self.subject = subject; self.release = release; self.before = before
    }

    /// The code as a release tag has it, when no single commit names it
    /// (`id` is the tag, `subject` says what of it the variant follows).
    public static func release(_ tag: String, _ what: String) -> KernelCommit { KernelCommit(tag, what, release: tag) }

    /// The same commit, naming the code just before it.
    public var parent: KernelCommit { KernelCommit(id, subject, release: release, before: true) }

    public var description: String {
        if id == release { return "\(id): \(subject)" }
        return (before ? "before " : "") + "\(id) (\"\(subject)\"\(release.map { ", \($0)" } ?? ""))"
    }
}

/// A form of the modelled kernel code a scenario can run: `pre-fix`, the fix as
/// written, the fix as merged, `upstream`, or a mutation. Variants share code and
/// differ only where the kernel did; each names the commit it follows.
public protocol ModelVariant: RawRepresentable, CaseIterable, Sendable, Hashable where RawValue == String {
    /// The kernel commit whose code (or whose parent's code) this variant is;
    /// nil for a mutation that no kernel ever had.
    var commit: KernelCommit? { get }
}
