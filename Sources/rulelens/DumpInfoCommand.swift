import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensStore
import RuleLensNumerics

/// `rulelens dump-info FILE.h5`: validate an activation file and list its attributes, sites and columns.
struct DumpInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-info",
        abstract: "Check an activation file written by `rulelens dump` and list its sites, shapes and meta columns.")

    @Argument(help: "The HDF5 activation file.")
    var file: String

    @Flag(help: "Open a file whose dump did not finish (complete=0).")
    var allowIncomplete = false

    @Flag(help: "Read the whole file: every chunk of every dataset (inflated) and every attribute (JSON ones parsed).")
    var verify = false

    @Flag(help: "Print one JSON object (examples, complete, positions, attributes, meta columns, sites with shape and dims, verification).")
    var json = false

    func run() throws {
        let reader = try ActivationStoreReader(path: file, allowIncomplete: allowIncomplete)
        // --verify reads everything first, so a damaged file fails before anything is listed.
        let line = ProgressLine(enabled: true)
        let verification = verify ? try reader.verify { done, total in line.update("verify: \(done)/\(total) datasets", final: done == total) } : nil
        let attributeKeys = ["model_config", "source_checkpoint", "source_data", "created_utc", "rulelens_version"]
        if json {
            var object: [String: Any] = [
                "file": file, "examples": reader.count, "complete": reader.complete, "positions": reader.positions,
                "attributes": Dictionary(uniqueKeysWithValues: attributeKeys.compactMap { k in reader.attribute(k).map { (k, $0) } }),
                "meta": reader.metaColumns,
                "sites": reader.sites.map { ["name": $0.name, "shape": $0.shape, "dims": $0.dims] as [String: Any] },
            ]
            if let v = verification {
                object["verified"] = ["datasets": v.datasets, "values": v.values, "attributes": v.attributes, "non_finite": v.nonFinite]
            }
            print(try JSONText.string(object, pretty: true))
            return
        }
        print("\(file): \(reader.count) examples, complete=\(reader.complete ? 1 : 0), positions=\(reader.positions)")
        for key in attributeKeys {
            if let value = reader.attribute(key) { print("  \(key): \(value)") }
        }
        print("meta: \(reader.metaColumns.joined(separator: ", "))")
        let width = reader.sites.map(\.name.count).max() ?? 0
        for site in reader.sites {
            let shape = "[" + site.shape.map(String.init).joined(separator: ", ") + "]"
            print("  " + site.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(shape)  \(site.dims.joined(separator: ","))")
        }
        if let v = verification {
            print("verified: \(v.datasets) datasets read in full (\(v.values) values, every chunk inflated), \(v.attributes) attributes parsed"
                  + (v.nonFinite > 0 ? "; \(v.nonFinite) activation values are NaN or infinite" : ""))
        }
    }
}
