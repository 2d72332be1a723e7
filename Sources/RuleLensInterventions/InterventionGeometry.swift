import RuleLensModel
import RuleLensNumerics

/// The shape of a model as the interventions need it, read from its hook sites (TransformerLens names), so that any
/// `LanguageModel` whose forward pass fires `blocks.{l}.hook_resid_pre`, `hook_attn_out`, `hook_mlp_out` and
/// `attn.hook_z` can be ablated and patched, whatever its family: no per-architecture code here.
public struct InterventionGeometry: Sendable, Equatable {
    /// Number of blocks (layers with `blocks.{l}.hook_resid_pre`).
    public let nLayer: Int
    /// Residual width (the last dimension of `hook_resid_pre`).
    public let dModel: Int
    /// Query heads and their width (`attn.hook_z` is [batch, pos, head, d_head]); 0 when the model has no z site.
    public let nHead: Int
    public let dHead: Int
    public let vocabSize: Int
    public let contextLength: Int
    /// Every site the model fires.
    public let sites: Set<String>
    /// "a llama model" (for messages).
    public let description: String

    /// Reads the geometry of `model`; a model without block residual sites cannot be intervened on.
    public init(_ model: any LanguageModel) throws {
        let sites = Set(model.hookSites)
        var layers = 0
        while sites.contains("blocks.\(layers).hook_resid_pre") { layers += 1 }
        guard layers > 0 else {
            throw RuleLensError("this \(model.architecture) model has no blocks.{layer}.hook_resid_pre sites, so ablate, patch and lens cannot address its layers",
                                fix: "use a model whose forward pass fires TransformerLens's block sites (GPT-2, Llama, Qwen2); `rulelens hooks --checkpoint DIR` lists a model's sites")
        }
        self.nLayer = layers
        self.sites = sites
        self.description = "this \(model.architecture) model"
        dModel = model.hookShape("blocks.0.hook_resid_pre", batch: 1, seqLen: 1).last ?? 0
        let z = model.hookShape("blocks.0.attn.hook_z", batch: 1, seqLen: 1)
        if sites.contains("blocks.0.attn.hook_z") && z.count == 4 { nHead = z[2]; dHead = z[3] } else { nHead = 0; dHead = 0 }
        vocabSize = model.vocabSize
        contextLength = model.contextLength
    }

    /// Width of one position of `site` ([batch, pos, …] → the product of the rest).
    public func width(_ model: any LanguageModel, _ site: String) -> Int {
        model.hookShape(site, batch: 1, seqLen: 1).dropFirst(2).reduce(1, *)
    }

    /// Throws unless the model fires `site` (what needs it is named in the message).
    public func require(_ site: String, for what: String) throws {
        guard sites.contains(site) else {
            throw RuleLensError("\(description) has no hook site \(site), which \(what) needs",
                                fix: "choose another component or site; `rulelens hooks --checkpoint DIR` lists the model's sites")
        }
    }

    /// Throws unless 0 ≤ layer < nLayer.
    public func checkLayer(_ layer: Int) throws {
        guard layer >= 0 && layer < nLayer else {
            throw RuleLensError("layer \(layer) is out of range: the model has layers 0…\(nLayer - 1)", fix: "pass --layers within 0…\(nLayer - 1), or all")
        }
    }

    /// Throws unless the model has heads and 0 ≤ head < nHead.
    public func checkHead(_ head: Int) throws {
        try require("blocks.0.attn.hook_z", for: "ablating or patching heads")
        guard head >= 0 && head < nHead else {
            throw RuleLensError("head \(head) is out of range: the model has heads 0…\(nHead - 1)", fix: "pass heads within 0…\(nHead - 1)")
        }
    }
}
