/// What `train` and `vae train` share: the decoder's shape and the optimisation schedule. Both option types conform,
/// so a caller that reads these settings (the run steps) does it once for either.
public protocol TrainingSettings {
    var layers: Int { get set }
    var heads: Int { get set }
    var dModel: Int { get set }
    var dMLP: Int? { get set }
    var ctx: Int { get set }
    var steps: Int { get set }
    var batch: Int { get set }
    var lr: Float { get set }
    var warmup: Int { get set }
    var weightDecay: Float { get set }
    var gradClip: Float { get set }
    var seed: UInt64 { get set }
}

extension TrainingSettings {
    /// Takes every shared setting (shape, schedule, seed) from `other`: a VAE trained like a GPT run.
    public mutating func adoptSettings(of other: some TrainingSettings) {
        layers = other.layers; heads = other.heads; dModel = other.dModel; dMLP = other.dMLP; ctx = other.ctx
        steps = other.steps; batch = other.batch; lr = other.lr; warmup = other.warmup
        weightDecay = other.weightDecay; gradClip = other.gradClip; seed = other.seed
    }
}

extension TrainOptions: TrainingSettings {}
extension VAETrainOptions: TrainingSettings {}
