import Foundation

/// Chooses the OpenBLAS kernel family before OpenBLAS loads.
///
/// OpenBLAS 0.3.21 misdetects AVX-512 Zen CPUs as Haswell; `OPENBLAS_CORETYPE=SkylakeX` nearly
/// doubles sgemm there. OpenBLAS reads the variable in its library constructor, before `main`
/// runs, so setting it in-process is too late: the executable re-executes itself once with it set.
public enum BLASEnvironment {
    /// Whether the CPU reports AVX-512F (Linux: /proc/cpuinfo).
    public static var cpuHasAVX512: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        return info.contains(" avx512f")
    }

    /// If `OPENBLAS_CORETYPE` is unset and the CPU has AVX-512, sets it to SkylakeX and re-executes the
    /// current program with the same arguments. Returns normally when nothing needs doing (or exec fails).
    /// Set `OPENBLAS_CORETYPE` yourself to choose another kernel; this never overrides it.
    public static func ensureCoreTypeOrReexec() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["RULELENS_NO_REEXEC"] == nil, cpuHasAVX512 else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        setenv("RULELENS_NO_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // exec failed: carry on with the default kernels.
    }
}
