/// One example as model tokens: `[bos] + prompt + target + [eos]`.
public struct TokenizedExample: Sendable, Equatable {
    /// The full sequence; the model reads `tokens[0..<n-1]` and predicts `tokens[1..<n]`.
    public let tokens: [Int32]
    /// Length of `[bos] + prompt`: the first target token sits at this index.
    public let promptLength: Int
    /// Number of positions the model reads (tokens.count - 1).
    public var inputLength: Int { tokens.count - 1 }
    /// `[bos] + prompt`, what greedy decoding starts from.
    public var prompt: [Int32] { Array(tokens[0..<promptLength]) }

    public init(tokens: [Int32], promptLength: Int) {
        self.tokens = tokens
        self.promptLength = promptLength
    }
}
