import Foundation
import RuleLensNumerics
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing the safetensors format (https://huggingface.co/docs/safetensors).
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON header
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`),
/// then the raw little-endian tensor bytes; offsets are relative to the end of the header.
/// The reader validates every entry against the file size so corrupt or truncated files give a
/// `RuleLensError` naming the file and the fault, never a crash.
public enum Safetensors {
    /// Element types RuleLens reads (F16/BF16/F64 are converted to Float) and writes (F32, I32).
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i32 = "I32", i64 = "I64"
        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f16, .bf16: return 2
            case .f32, .i32: return 4
            case .f64, .i64: return 8
            }
        }
    }

    /// One tensor's header entry.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range in the data section.
        public let begin: Int, end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// A tensor to write: a name, its shape and its contiguous values.
    public struct Entry {
        public let name: String
        public let shape: [Int]
        let dtype: DType
        let bytes: UnsafeRawBufferPointer

        /// Float32 values (`count` must equal the product of `shape`).
        public init(name: String, shape: [Int], floats: UnsafePointer<Float>) {
            self.name = name; self.shape = shape; dtype = .f32
            bytes = UnsafeRawBufferPointer(start: floats, count: shape.reduce(1, *) * 4)
        }

        /// Int32 values (`count` must equal the product of `shape`).
        public init(name: String, shape: [Int], int32s: UnsafePointer<Int32>) {
            self.name = name; self.shape = shape; dtype = .i32
            bytes = UnsafeRawBufferPointer(start: int32s, count: shape.reduce(1, *) * 4)
        }
    }

    /// An opened safetensors file: its header and its (memory-mapped) bytes.
    public struct File {
        public let path: String
        /// Entries in file order (sorted by data offset).
        public let tensors: [TensorInfo]
        /// The free-form `__metadata__` strings.
        public let metadata: [String: String]
        let data: Data
        let dataStart: Int

        /// The entry called `name`, or nil.
        public func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }

        /// Copies tensor `name` into `destination` as Float (converting F16/BF16/F64/I32/I64).
        /// The caller guarantees room for `info.count` floats.
        public func copyFloats(_ info: TensorInfo, into destination: UnsafeMutablePointer<Float>) {
            data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let src = raw.baseAddress!.advanced(by: dataStart + info.begin)
                let n = info.count
                switch info.dtype {
                case .f32:
                    UnsafeMutableRawPointer(destination).copyMemory(from: src, byteCount: n * 4)
                case .f64:
                    for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
                case .i32:
                    for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
                case .i64:
                    for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
                case .bf16:
                    for i in 0..<n {
                        let bits = UInt32(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16
                        destination[i] = Float(bitPattern: bits)
                    }
                case .f16:
                    for i in 0..<n { destination[i] = Safetensors.halfToFloat(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
                }
            }
        }

        /// Tensor `name` as a Float array; throws if it is absent.
        public func floats(_ name: String) throws -> [Float] {
            guard let info = info(name) else {
                throw RuleLensError("\(path) has no tensor \"\(name)\"", fix: "check the tensor name; the file holds: \(tensors.map(\.name).joined(separator: ", "))")
            }
            var out = [Float](repeating: 0, count: info.count)
            out.withUnsafeMutableBufferPointer { copyFloats(info, into: $0.baseAddress!) }
            return out
        }
    }

    /// Opens and validates `path`.
    public static func read(path: String) throws -> File {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuleLensError("safetensors file \(path) does not exist", fix: "check the path (a checkpoint directory holds model.safetensors)")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw RuleLensError("safetensors file \(path) cannot be read (\(error.localizedDescription))", fix: "check its permissions")
        }
        func corrupt(_ what: String) -> RuleLensError {
            RuleLensError("\(path) is not a valid safetensors file: \(what)",
                          fix: "the file is corrupt or truncated; re-create it (e.g. re-run the save or training that wrote it)")
        }
        guard data.count >= 8 else { throw corrupt("it is \(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength >= 2, headerLength <= UInt64(data.count - 8), headerLength < 100_000_000 else {
            throw corrupt("the header length \(headerLength) does not fit in the \(data.count)-byte file")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = data.subdata(in: 8..<dataStart)
        guard let object = try? JSONSerialization.jsonObject(with: headerBytes), let header = object as? [String: Any] else {
            throw corrupt("the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        let dataLength = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw corrupt("__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shapeValues = entry["shape"] as? [Any], let offsets = entry["data_offsets"] as? [Any], offsets.count == 2 else {
                throw corrupt("tensor \"\(name)\" lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw RuleLensError("\(path): tensor \"\(name)\" has dtype \(dtypeName), which RuleLens does not read",
                                    fix: "save the weights as float32 (F32), F16, BF16 or F64")
            }
            let shape = shapeValues.compactMap { ($0 as? NSNumber)?.intValue }
            let bounds = offsets.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeValues.count, shape.allSatisfy({ $0 >= 0 }), bounds.count == 2 else {
                throw corrupt("tensor \"\(name)\" has a malformed shape or data_offsets")
            }
            let info = TensorInfo(name: name, dtype: dtype, shape: shape, begin: bounds[0], end: bounds[1])
            guard info.begin >= 0, info.begin <= info.end, info.end - info.begin == info.count * dtype.size else {
                throw corrupt("tensor \"\(name)\" (\(dtypeName) \(shape)) has data_offsets \(bounds) that do not match its size")
            }
            guard info.end <= dataLength else {
                throw corrupt("tensor \"\(name)\" ends at byte \(info.end) of the data section, but only \(dataLength) bytes follow the header (truncated file)")
            }
            tensors.append(info)
        }
        tensors.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (previous, next) in zip(tensors, tensors.dropFirst()) where next.begin < previous.end {
            throw corrupt("tensors \"\(previous.name)\" and \"\(next.name)\" overlap")
        }
        return File(path: path, tensors: tensors, metadata: metadata, data: data, dataStart: dataStart)
    }

    /// Serialises `entries` (in the given order) with `metadata`. Deterministic: same inputs, same bytes.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) -> Data {
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
        }
        json += parts.joined(separator: ",") + "}"
        // Pad the header with spaces so the data section starts 8-byte aligned (as the reference writer does).
        while (json.utf8.count % 8) != 0 { json += " " }
        var out = Data(capacity: 8 + json.utf8.count + offset)
        var length = UInt64(json.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(json.utf8))
        for e in entries where e.bytes.count > 0 { out.append(contentsOf: e.bytes) }
        return out
    }

    /// Writes `entries` to `path` atomically: a temporary file in the same folder, flushed, then renamed.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(entries, metadata: metadata), to: path)
    }

    static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let text = String(decoding: data, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }

    /// IEEE 754 half → single.
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
}
