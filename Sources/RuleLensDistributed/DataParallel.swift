import Foundation
import RuleLensNumerics

/// What a training step loop asks of data parallelism: which rows of each global batch this process computes, and
/// how its gradient becomes the global batch's gradient. `DataParallel` is the MPI implementation; with one rank it
/// changes nothing.
public protocol GradientReducer: AnyObject {
    /// This process's rank and the number of ranks.
    var rank: Int { get }
    var ranks: Int { get }
    /// The contiguous rows of a global batch of `rows` examples that this rank computes (rank order, sizes differ
    /// by at most one).
    func rows(ofGlobalBatch rows: Int) -> Range<Int>
    /// Turns this rank's gradient of its *local* masked-mean loss (Σ_local w·CE / W_local) into the gradient of the
    /// *global* batch's masked-mean loss (Σ_all w·CE / W), identical on every rank, and returns the global loss.
    /// `gradients`: the model's contiguous gradient buffer, reduced in place.
    func reduce(gradients: UnsafeMutablePointer<Float>, count: Int, localLoss: Float,
                localWeight: Double, globalWeight: Double) -> Float
    /// Throws the same `CollectiveError` on every rank unless all ranks hold the same `items` (see
    /// `Communicator.agree`): called once every check has passed and before anything is written.
    func agree(_ items: [AgreementItem]) throws
    /// Throws on every rank unless every rank holds the same bits in `values` (e.g. the weights at a save).
    func checkIdentical(_ values: UnsafePointer<Float>, count: Int, what: String) throws
}

/// Data parallelism over MPI_COMM_WORLD: every rank holds the whole model; each step, one in-place MPI_Allreduce
/// sums the gradient buffer.
///
/// Exactness: rank r's loss is normalised by its own mask weight W_r, the one-process loss by the global W. Scaling
/// rank r's gradient by W_r / W before the sum makes Σ_r exactly the one-process gradient up to rounding (the sum
/// is split across ranks instead of running in one GEMM), whatever the ranks' shares of masked tokens.
public final class DataParallel: GradientReducer {
    public let communicator: Communicator
    /// Non-nil: reduce in buckets of this many floats with non-blocking allreduces (measured in `make bench`;
    /// without overlap with the backward pass it only adds latency, so the default is one call).
    public var bucketElements: Int? = nil
    /// Time spent in the gradient allreduce(s), summed over steps.
    public private(set) var allreduceSeconds = 0.0
    public private(set) var steps = 0

    public init(communicator: Communicator = .world) { self.communicator = communicator }

    public var rank: Int { communicator.rank }
    public var ranks: Int { communicator.size }

    public func agree(_ items: [AgreementItem]) throws {
        try communicator.agree([AgreementItem("rulelens binary", Communicator.binaryFingerprint())] + items)
    }

    public func checkIdentical(_ values: UnsafePointer<Float>, count: Int, what: String) throws {
        try communicator.checkIdentical(values, count: count, what: what)
    }

    public func rows(ofGlobalBatch rows: Int) -> Range<Int> {
        (rows * rank / ranks)..<(rows * (rank + 1) / ranks)
    }

    public func reduce(gradients: UnsafeMutablePointer<Float>, count: Int, localLoss: Float,
                       localWeight: Double, globalWeight: Double) -> Float {
        guard ranks > 1 else { return localLoss }
        let share = globalWeight > 0 ? localWeight / globalWeight : 0
        let scale = Float(share)
        if scale != 1 {
            Parallel.forRanges(count, minPerThread: 16_384) { i0, i1 in for i in i0..<i1 { gradients[i] *= scale } }
        }
        let t0 = communicator.now()
        if let bucket = bucketElements, bucket > 0, bucket < count {
            communicator.allreduceSumBucketed(gradients, count: count, bucket: bucket)
        } else {
            communicator.allreduceSum(gradients, count: count)
        }
        allreduceSeconds += communicator.now() - t0
        steps += 1
        // The loss: Σ_r loss_r · W_r / W, in Double.
        return Float(communicator.sum(Double(localLoss) * share))
    }

    /// Mean milliseconds per step spent in the gradient allreduce.
    public var allreduceMillisecondsPerStep: Double { steps > 0 ? 1000 * allreduceSeconds / Double(steps) : 0 }
}
