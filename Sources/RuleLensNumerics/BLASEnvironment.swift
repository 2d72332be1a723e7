import CBLAS
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
        setenv("RULELENS_SET_CORETYPE", "1", 1)   // provenance: the kernel was chosen by rulelens, not the user
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // exec failed: carry on with the default kernels.
    }
}

/// Which BLAS produced a result. RuleLens's results are bitwise reproducible for the same OpenBLAS kernel family
/// and thread count, and only then (e.g. the demo's inside-square accuracy is 0.448 with Haswell kernels and 0.618
/// with SkylakeX), so every result file records this next to its other provenance.
public struct BLASProvenance: Codable, Equatable, Sendable {
    /// The kernel family OpenBLAS is actually using (`openblas_get_corename()`, e.g. "SkylakeX", "Haswell").
    public var core: String
    /// OpenBLAS's build description (`openblas_get_config()`, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64").
    public var config: String
    /// `OPENBLAS_CORETYPE` as this process saw it ("unset" when absent); rulelens sets SkylakeX itself on AVX-512
    /// CPUs when it is unset (see `BLASEnvironment.ensureCoreTypeOrReexec`).
    public var coretypeEnv: String
    /// Worker threads of RuleLens's loops and split GEMMs (`Parallel.threads`): results depend on it.
    public var threads: Int

    enum CodingKeys: String, CodingKey {
        case core = "blas_core", config = "blas_config", coretypeEnv = "openblas_coretype", threads
    }

    /// What is in force now.
    public static var current: BLASProvenance {
        let env = ProcessInfo.processInfo.environment
        var coretype = env["OPENBLAS_CORETYPE"] ?? "unset"
        if env["RULELENS_SET_CORETYPE"] != nil && env["OPENBLAS_CORETYPE"] != nil { coretype += " (set by rulelens)" }
        return BLASProvenance(core: BLAS.coreName, config: String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces),
                              coretypeEnv: coretype, threads: Parallel.threads)
    }

    /// The fields as string pairs (for JSON objects, HDF5 attributes, safetensors metadata).
    public var fields: [(key: String, value: String)] {
        [("blas_core", core), ("blas_config", config), ("openblas_coretype", coretypeEnv), ("threads", String(threads))]
    }

    /// "OpenBLAS SkylakeX kernels, 2 threads".
    public var summary: String { "OpenBLAS \(core) kernels, \(threads) thread\(threads == 1 ? "" : "s")" }
}
