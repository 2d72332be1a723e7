import CMPI
import Foundation
import RuleLensNumerics

/// The ranks of one `mpirun` launch (MPI_COMM_WORLD), or a lone rank when the process was not launched by an MPI
/// launcher. With one rank every collective is a no-op that leaves its buffer as it is, so code written against
/// `Communicator` runs exactly as before without `mpirun`.
///
/// MPI is initialised on first use of `world`, and only when the launcher's environment says so (Open MPI's
/// `OMPI_COMM_WORLD_SIZE`, PMIx's `PMIX_RANK`, PMI's `PMI_RANK`): a plain `rulelens train` never touches MPI.
/// Only the main thread calls MPI (MPI_THREAD_FUNNELED); RuleLens's worker threads only compute.
public final class Communicator {
    /// This rank (0-based) and the number of ranks.
    public let rank: Int, size: Int
    /// Whether MPI was initialised (launched by mpirun or another MPI launcher).
    public let usesMPI: Bool
    /// Ranks on this node (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`; 1 without MPI), for the default thread count.
    public let localSize: Int
    /// Seconds spent inside gradient allreduces (for the progress line and `make bench`).
    public internal(set) var allreduceSeconds = 0.0
    public internal(set) var allreduceCalls = 0

    /// Rank 0 alone writes files, logs and progress.
    public var isRoot: Bool { rank == 0 }

    nonisolated(unsafe) private static var shared: Communicator?

    /// The world communicator (initialises MPI on first use when launched by an MPI launcher).
    public static var world: Communicator {
        if let shared { return shared }
        let made = Communicator()
        shared = made
        return made
    }

    /// The world communicator if something already asked for it (nil: MPI was never touched).
    public static var existing: Communicator? { shared }

    /// Whether the environment says an MPI launcher started this process.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    private init() {
        let env = ProcessInfo.processInfo.environment
        guard Self.launchedByMPI else {
            rank = 0; size = 1; usesMPI = false; localSize = 1
            return
        }
        if rl_mpi_initialized() == 0 {
            var provided: Int32 = 0
            // Open MPI's default error handler (errors are fatal) stays: a failed collective ends every rank.
            _ = rl_mpi_init(&provided)
        }
        usesMPI = true
        rank = Int(rl_mpi_rank())
        size = Int(rl_mpi_size())
        localSize = max(1, Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["MPI_LOCALNRANKS"] ?? "") ?? 1)
    }

    /// Ends MPI cleanly (call once, at the end of the program; harmless without MPI).
    public func finalize() {
        guard usesMPI, rl_mpi_finalized() == 0 else { return }
        _ = rl_mpi_finalize()
    }

    /// Ends every rank at once (MPI_Abort); without MPI, exits this process.
    public func abort(code: Int32) -> Never {
        if usesMPI && rl_mpi_finalized() == 0 { _ = rl_mpi_abort(code) }
        Foundation.exit(code)
    }

    /// The default worker-thread count for this rank: the node's cores shared among its ranks.
    public var defaultThreads: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount / localSize)
    }

    // MARK: - Collectives (no-ops with one rank)

    /// Waits until every rank gets here.
    public func barrier() {
        guard size > 1 else { return }
        _ = rl_mpi_barrier()
    }

    /// Sums `count` floats over ranks in place (MPI_Allreduce with MPI_IN_PLACE); longer buffers go in pieces
    /// of at most 2³⁰ elements (MPI counts are 32-bit).
    public func allreduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1, count > 0 else { return }
        let piece = 1 << 30
        var start = 0
        while start < count {
            let n = min(piece, count - start)
            _ = rl_mpi_allreduce_sum_float(values + start, Int32(n))
            start += n
        }
    }

    /// Sums doubles over ranks in place.
    public func allreduceSum(_ values: inout [Double]) {
        guard size > 1, !values.isEmpty else { return }
        let n = Int32(values.count)
        values.withUnsafeMutableBufferPointer { _ = rl_mpi_allreduce_sum_double($0.baseAddress!, n) }
    }

    /// The sum over ranks of one number.
    public func sum(_ value: Double) -> Double {
        var v = [value]
        allreduceSum(&v)
        return v[0]
    }

    /// The smallest and largest of one integer over ranks.
    public func minMax(_ value: Int) -> (min: Int, max: Int) {
        guard size > 1 else { return (value, value) }
        var lo = [Int64(value)], hi = [Int64(value)]
        lo.withUnsafeMutableBufferPointer { _ = rl_mpi_allreduce_min_int64($0.baseAddress!, 1) }
        hi.withUnsafeMutableBufferPointer { _ = rl_mpi_allreduce_max_int64($0.baseAddress!, 1) }
        return (Int(lo[0]), Int(hi[0]))
    }

    /// Copies `count` bytes from `root`'s buffer into every other rank's.
    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int = 0) {
        guard size > 1, count > 0 else { return }
        let piece = 1 << 30
        var start = 0
        while start < count {
            let n = min(piece, count - start)
            _ = rl_mpi_bcast_bytes(bytes + start, Int32(n), Int32(root))
            start += n
        }
    }

    /// `root`'s floats, copied into every rank's buffer.
    public func broadcast(_ values: FloatBuffer, root: Int = 0) {
        broadcast(UnsafeMutableRawPointer(values.ptr), count: values.count * MemoryLayout<Float>.stride, root: root)
    }

    /// `root`'s string, on every rank.
    public func broadcast(_ text: String, root: Int = 0) -> String {
        guard size > 1 else { return text }
        var length = [Int64(rank == root ? text.utf8.count : 0)]
        length.withUnsafeMutableBytes { broadcast($0.baseAddress!, count: 8, root: root) }
        var bytes = rank == root ? Array(text.utf8) : [UInt8](repeating: 0, count: Int(length[0]))
        bytes.withUnsafeMutableBytes { if $0.count > 0 { broadcast($0.baseAddress!, count: $0.count, root: root) } }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every rank's string, in rank order, on every rank.
    public func allgather(_ text: String) -> [String] {
        guard size > 1 else { return [text] }
        let mine = Array(text.utf8)
        var lengths = [Int32](repeating: 0, count: size)
        var myLength = Int32(mine.count)
        lengths.withUnsafeMutableBytes { out in
            withUnsafeBytes(of: &myLength) { _ = rl_mpi_allgather_bytes($0.baseAddress!, out.baseAddress!, 4) }
        }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + lengths[r - 1] }
        let total = Int(displacements[size - 1] + lengths[size - 1])
        var all = [UInt8](repeating: 0, count: max(1, total))
        mine.withUnsafeBytes { send in
            all.withUnsafeMutableBytes { receive in
                _ = rl_mpi_allgatherv_bytes(send.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, myLength,
                                            receive.baseAddress!, lengths, displacements)
            }
        }
        return (0..<size).map { r in
            let start = Int(displacements[r])
            return String(decoding: all[start..<(start + Int(lengths[r]))], as: UTF8.self)
        }
    }

    /// Seconds on a clock shared by MPI (MPI_Wtime; monotonic time without MPI).
    public func now() -> Double {
        usesMPI ? rl_mpi_wtime() : Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}

extension Communicator {
    /// `allreduceSum` in buckets of `bucket` floats, all started at once (MPI_Iallreduce) and then waited for.
    public func allreduceSumBucketed(_ values: UnsafeMutablePointer<Float>, count: Int, bucket: Int) {
        guard size > 1, count > 0 else { return }
        let piece = max(1, min(bucket, 1 << 30))
        var requests: [MPI_Request?] = []
        var start = 0
        while start < count {
            let n = min(piece, count - start)
            var request = rl_mpi_request_null()
            _ = rl_mpi_iallreduce_sum_float(values + start, Int32(n), &request)
            requests.append(request)
            start += n
        }
        for i in requests.indices { _ = rl_mpi_wait(&requests[i]) }
    }
}
