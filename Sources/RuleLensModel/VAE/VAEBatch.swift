/// One right-padded VAE batch built from full token rows `[bos] + prompt + target + [eos]`.
///
/// The encoder reads each whole row (`encTokens` [B, Te], its real length in `encLengths`); the decoder reads the row
/// without its last token and predicts the next one (`decInputs`, `decTargets` [B, Td], Td = Te − 1). `lossMask`
/// counts every real decoder position (decode `.all`, autoencoding) or only those predicting the target and eos
/// (decode `.target`: the decoder is conditioned on the prompt).
public struct VAEBatch: Sendable {
    public let batch: Int
    /// Encoder sequence length Te (the longest row) and decoder length Td = Te − 1.
    public let encLen: Int, decLen: Int
    public var encTokens: [Int32]
    public var encLengths: [Int32]
    public var decInputs: [Int32]
    public var decTargets: [Int32]
    public var lossMask: [Float]
    /// Class ids for the supervision classifier [B] (nil without supervision).
    public var labels: [Int32]?
    /// Real decoder input tokens (what tokens/s counts).
    public var realTokens: Int

    /// rows: full sequences (at least 2 tokens each); promptLengths: len([bos] + prompt) per row.
    public init(rows: [[Int32]], promptLengths: [Int], decode: DecodeMode, labels: [Int32]? = nil, pad: Int32 = 0) {
        precondition(!rows.isEmpty && rows.count == promptLengths.count && rows.allSatisfy { $0.count >= 2 }, "VAEBatch: bad rows")
        let B = rows.count, Te = rows.map(\.count).max()!, Td = Te - 1
        batch = B; encLen = Te; decLen = Td
        var enc = [Int32](repeating: pad, count: B * Te)
        var inputs = [Int32](repeating: pad, count: B * Td), targets = inputs
        var mask = [Float](repeating: 0, count: B * Td)
        var real = 0
        for (b, row) in rows.enumerated() {
            let n = row.count
            for t in 0..<n { enc[b * Te + t] = row[t] }
            let first = decode == .all ? 0 : max(0, promptLengths[b] - 1)
            for t in 0..<(n - 1) {
                inputs[b * Td + t] = row[t]
                targets[b * Td + t] = row[t + 1]
                if t >= first { mask[b * Td + t] = 1 }
            }
            real += n - 1
        }
        encTokens = enc; encLengths = rows.map { Int32($0.count) }
        decInputs = inputs; decTargets = targets; lossMask = mask
        self.labels = labels; realTokens = real
    }
}
