/// Every verb that both the command line and specs run. A new verb is one file here and one entry in this list.
public enum Verbs {
    public static let all: [AnyVerb] = [
        AnyVerb(DataGenerateVerb.self),
        AnyVerb(TrainVerb.self),
        AnyVerb(InitVerb.self),
        AnyVerb(EvalVerb.self),
        AnyVerb(AblateVerb.self),
        AnyVerb(PairsVerb.self),
        AnyVerb(DataSubsetVerb.self),
        AnyVerb(PatchVerb.self),
        AnyVerb(LensVerb.self),
        AnyVerb(RetrieveVerb.self),
        AnyVerb(LogitsVerb.self),
        AnyVerb(DumpVerb.self),
        AnyVerb(RelabelVerb.self),
        AnyVerb(ProbeVerb.self),
        AnyVerb(NTKVerb.self),
        AnyVerb(GradVerb.self),
        AnyVerb(VAETrainVerb.self), AnyVerb(VAEEvalVerb.self), AnyVerb(VAEEncodeVerb.self), AnyVerb(VAEDecodeVerb.self),
        AnyVerb(VAEInterpolateVerb.self), AnyVerb(VAETraverseVerb.self), AnyVerb(VAELogitsVerb.self),
    ]

    /// The verb a spec step names (`eval`, `vae-train`).
    public static func named(_ kind: String) -> AnyVerb? { all.first { $0.kind == kind } }
}
