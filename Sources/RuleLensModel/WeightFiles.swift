import Foundation
import RuleLensNumerics

/// The weights of a model folder, as Hugging Face saves them: one `model.safetensors`, or shards listed in
/// `model.safetensors.index.json` (`{"weight_map": {"tensor name": "model-00001-of-00002.safetensors", …}}`).
/// Tensors are F32, F16, BF16 or F64 and are read into Float32 (`copyFloats`).
///
/// PyTorch pickles (`pytorch_model.bin`) are refused: unpickling runs arbitrary code, so RuleLens never opens them.
public struct WeightFiles {
    public static let single = "model.safetensors"
    public static let index = "model.safetensors.index.json"

    public let folder: String
    /// The single file's path, or the index's.
    public let source: String
    /// The opened files (one, or every shard).
    public let files: [Safetensors.File]
    /// Tensor name → (file number, header entry), in file order then data order.
    public let tensors: [(name: String, file: Int, info: Safetensors.TensorInfo)]
    private let byName: [String: Int]

    /// Whether `folder` holds safetensors weights (single or sharded).
    public static func exist(in folder: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: folder + "/" + single) || fm.fileExists(atPath: folder + "/" + index)
    }

    /// Opens the weights of `folder`; every error names the file and the fix.
    public static func open(folder: String) throws -> WeightFiles {
        let fm = FileManager.default
        if fm.fileExists(atPath: folder + "/" + single) {
            let file = try Safetensors.read(path: folder + "/" + single)
            return WeightFiles(file)
        }
        if fm.fileExists(atPath: folder + "/" + index) { return try openSharded(folder: folder) }
        let pickles = (try? fm.contentsOfDirectory(atPath: folder))?.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }.sorted() ?? []
        if !pickles.isEmpty {
            throw RuleLensError("\(folder) holds PyTorch pickle weights (\(pickles.prefix(3).joined(separator: ", "))), which RuleLens does not read: unpickling a file can run arbitrary code",
                                fix: "convert them to safetensors once, in Python: from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained(\"\(folder)\").save_pretrained(\"\(folder)\", safe_serialization=True)")
        }
        throw RuleLensError("\(folder) has no \(single) or \(index)",
                            fix: "pass a folder with safetensors weights (the --out of `rulelens train`, or a Hugging Face model saved with save_pretrained)")
    }

    static func openSharded(folder: String) throws -> WeightFiles {
        let indexPath = folder + "/" + index
        guard let data = FileManager.default.contents(atPath: indexPath),
              let object = try? JSONSerialization.jsonObject(with: data), let root = object as? [String: Any],
              let map = root["weight_map"] as? [String: Any] else {
            throw RuleLensError("\(indexPath) is not a safetensors index (a JSON object with a \"weight_map\")",
                                fix: "re-save the model with save_pretrained, or copy the index file again")
        }
        var shardOf: [String: String] = [:]
        for (name, value) in map {
            guard let shard = value as? String, !shard.contains("/") else {
                throw RuleLensError("\(indexPath) maps \(name) to \(value), not a file name in the folder", fix: "re-save the model with save_pretrained")
            }
            shardOf[name] = shard
        }
        let shards = Array(Set(shardOf.values)).sorted()
        let fm = FileManager.default
        let missing = shards.filter { !fm.fileExists(atPath: folder + "/" + $0) }
        if !missing.isEmpty {
            throw RuleLensError("\(indexPath) lists \(shards.count) shards, but \(missing.count) are missing from \(folder): \(missing.prefix(4).joined(separator: ", "))",
                                fix: "copy every shard the index names into \(folder) (a download that stopped early leaves some out)")
        }
        var files: [Safetensors.File] = []
        var tensors: [(name: String, file: Int, info: Safetensors.TensorInfo)] = []
        for (k, shard) in shards.enumerated() {
            let file = try Safetensors.read(path: folder + "/" + shard)
            files.append(file)
            for info in file.tensors where shardOf[info.name] == shard { tensors.append((info.name, k, info)) }
            let expected = shardOf.filter { $0.value == shard }.map(\.key)
            for name in expected.sorted() where file.info(name) == nil {
                throw RuleLensError("\(indexPath) says \(name) is in \(shard), but that shard does not hold it",
                                    fix: "the shards and the index come from different saves; copy the model folder again")
            }
        }
        return WeightFiles(folder: folder, source: indexPath, files: files, tensors: tensors)
    }

    /// One safetensors file.
    public init(_ file: Safetensors.File) {
        self.init(folder: (file.path as NSString).deletingLastPathComponent, source: file.path, files: [file],
                  tensors: file.tensors.map { ($0.name, 0, $0) })
    }

    init(folder: String, source: String, files: [Safetensors.File], tensors: [(name: String, file: Int, info: Safetensors.TensorInfo)]) {
        self.folder = folder; self.source = source; self.files = files; self.tensors = tensors
        var map: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { map[t.name] = i }
        byName = map
    }

    /// Header entry of `name`, or nil.
    public func info(_ name: String) -> Safetensors.TensorInfo? { byName[name].map { tensors[$0].info } }

    /// The file path that holds `name` (for error messages).
    public func path(of name: String) -> String { byName[name].map { files[tensors[$0].file].path } ?? folder }

    /// Copies tensor `name` into `destination` as Float32 (the caller guarantees room for its element count).
    public func copyFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) {
        let t = tensors[byName[name]!]
        files[t.file].copyFloats(t.info, into: destination)
    }

    /// Tensor `name` as a Float array; throws naming the folder if it is absent.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = info(name) else {
            throw RuleLensError("the weights in \(folder) have no tensor \"\(name)\"", fix: "check that config.json and the weights belong together")
        }
        var out = [Float](repeating: 0, count: info.count)
        out.withUnsafeMutableBufferPointer { copyFloats(name, into: $0.baseAddress!) }
        return out
    }

    /// For messages: the single file's path, or the index's.
    public var description: String { source }
}
