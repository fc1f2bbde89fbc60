// SPDX-License-Identifier: GPL-2.0-only

/// An actor that runs on a `SimExecutor` of its own, so that the deterministic
/// scheduler sees every step it takes and parallel mode gives it a real thread.
/// Its work is synchronous kernel-style code whose scheduling points are explicit
/// (`SimEngine.point`).
public protocol SimActor: Actor {
    nonisolated var executor: SimExecutor { get }
}

extension SimActor {
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
}
