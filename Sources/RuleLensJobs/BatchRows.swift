import Foundation
import RuleLensTasks

extension Batch {
    /// Rows `range` of this batch, with the same padded length (data parallelism: one rank's slice of a global
    /// batch, so every rank runs the shapes and masks the one-process run would). `pad`: the padding token id.
    public func rows(_ range: Range<Int>, pad: Int32 = CharTokenizer.pad) -> Batch {
        let lo = range.lowerBound * seqLen, hi = range.upperBound * seqLen
        let inputs = Array(self.inputs[lo..<hi])
        return Batch(batch: range.count, seqLen: seqLen, inputs: inputs, targets: Array(targets[lo..<hi]),
                     lossMask: Array(lossMask[lo..<hi]), realTokens: inputs.reduce(0) { $0 + ($1 != pad ? 1 : 0) })
    }

    /// Σ lossMask: the denominator of the batch's masked-mean loss, in Double.
    public var lossWeight: Double { lossMask.reduce(0.0) { $0 + Double($1) } }
}
