import ArgumentParser
import RuleLensVerbs

/// `rulelens vae …`: the language VAE of study 2; each subcommand is a verb (Sources/RuleLensVerbs/VAE.swift).
struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "The language VAE (study 2): bidirectional encoder → μ, log σ² → z → GPT-2 decoder with z injected.",
        subcommands: [VerbCommand<VAETrainVerb>.self, VerbCommand<VAEEvalVerb>.self, VerbCommand<VAEEncodeVerb>.self,
                      VerbCommand<VAEDecodeVerb>.self, VerbCommand<VAEInterpolateVerb>.self, VerbCommand<VAETraverseVerb>.self,
                      VerbCommand<VAELogitsVerb>.self])
}
