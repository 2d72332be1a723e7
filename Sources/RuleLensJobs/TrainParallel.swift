import Foundation
import RuleLensDistributed
import RuleLensModel
import RuleLensNumerics

/// What `mpirun -np N rulelens train` ranks must share before the first step (`TrainJob.parallel`).
extension TrainJob {
    /// The options (without the per-rank thread count, which changes no result), the data, and the starting weights
    /// and AdamW moments (fresh, or loaded by --resume) as fingerprints.
    static func agreementItems(_ options: TrainOptions, dataFingerprint: String, model: any LanguageModel, adam: AdamW) throws -> [AgreementItem] {
        var fields = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as? [String: Any] ?? [:]
        fields["threads"] = nil
        let json = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
        var items = [AgreementItem("training options", String(decoding: json, as: UTF8.self)),
                     AgreementItem("training data", dataFingerprint),
                     AgreementItem("starting weights", Communicator.fingerprint(model.parameterStorage.ptr, count: model.parameterStorage.count))]
        if adam.m.count > 0 {
            items.append(AgreementItem("optimizer state", Communicator.fingerprint(adam.m.ptr, count: adam.m.count)
                                       + Communicator.fingerprint(adam.v.ptr, count: adam.v.count) + "/\(adam.t)"))
        }
        return items
    }
}
