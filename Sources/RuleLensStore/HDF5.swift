import CHDF5
import CRuleLensGuard
import Foundation
import RuleLensNumerics

/// A thin, safe layer over the HDF5 C library.
///
/// HDF5 (as Debian builds it) is not thread-safe, so every call into it goes through `HDF5.locked`,
/// one process-wide recursive lock. HDF5's own stderr error printing is silenced; a failed call is
/// turned into a `RuleLensError` that names the operation, the file and HDF5's innermost reason.
public enum HDF5 {
    private static let lock: NSRecursiveLock = {
        let lock = NSRecursiveLock()
        lock.name = "RuleLens.HDF5"
        return lock
    }()
    nonisolated(unsafe) private static var initialised = false

    /// Runs `body` holding the HDF5 lock (re-entrant). Every C call into HDF5 must be inside one.
    @inline(__always)
    public static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        rl_guard_enter()
        defer { rl_guard_leave(); lock.unlock() }
        if !initialised {
            // No clean-up at exit: every file is closed explicitly, and a file whose writes failed (a full disk)
            // must not be flushed again by HDF5's atexit handler, which then crashes the exiting process.
            H5dont_atexit()
            H5open()
            rl_H5_silence_errors()
            initialised = true
        }
        return try body()
    }

    /// Turns a crash inside the HDF5 library (a fault HDF5 does not check for, e.g. a damaged global heap) into an
    /// `error:`/`fix:` paragraph and exit code 1 instead of a signal. Crashes outside HDF5 calls are untouched.
    /// The command-line tool installs it at start-up.
    public static func installCrashGuard() { rl_guard_install() }

    /// The innermost messages on HDF5's error stack for the calling thread (most specific last), then clears it.
    static func errorStackSummary() -> String {
        final class Collector { var lines: [String] = [] }
        let collector = Collector()
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        _ = H5Ewalk2(hid_t(0), H5E_WALK_DOWNWARD, { _, desc, clientData in
            guard let desc, let clientData else { return 0 }
            let c = Unmanaged<Collector>.fromOpaque(clientData).takeUnretainedValue()
            if let d = desc.pointee.desc { c.lines.append(String(cString: d)) }
            return 0
        }, box.toOpaque())
        H5Eclear2(hid_t(0))
        // The last two entries are the lowest-level causes ("truncated file: eof = …", "bad object header…").
        let lines = collector.lines.filter { !$0.isEmpty }
        return lines.suffix(2).joined(separator: "; ")
    }

    /// Builds the error for a failed call: `what` names the operation and file.
    static func failure(_ what: String, fix: String? = nil) -> RuleLensError {
        let reason = errorStackSummary()
        // A failed system call (a full disk, a read-only folder…) is a file-system error, named as every other one.
        let action = what.hasPrefix("read") || what.hasPrefix("open") ? "read" : "write"
        if let mapped = FileSystemError.mapped(RuleLensError(reason, fix: ""), action: action) { return mapped }
        return RuleLensError("HDF5 could not \(what)" + (reason.isEmpty ? "" : " (\(reason))"),
                             fix: fix ?? "check that the file is a complete, uncorrupted HDF5 file and that the path is writable")
    }

    /// Throws unless `status` is non-negative.
    @discardableResult
    static func check<T: BinaryInteger>(_ status: T, _ what: @autoclosure () -> String, fix: String? = nil) throws -> T {
        if status < 0 { throw failure(what(), fix: fix) }
        return status
    }
}

/// An HDF5 identifier that is closed exactly once: explicitly with `close()` or when the object is released.
public class HDF5Object {
    /// The raw HDF5 identifier (valid until closed).
    public private(set) var id: hid_t
    private let closer: (hid_t) -> herr_t

    init(id: hid_t, closer: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.closer = closer
    }

    /// Closes the identifier; later calls do nothing.
    public func close() {
        HDF5.locked {
            if id >= 0 { _ = closer(id); id = -1 }
        }
    }

    deinit { close() }
}

/// An HDF5 dataspace, datatype or property list used only for the length of one call.
final class HDF5Temp: HDF5Object {
    static func space(_ id: hid_t, _ what: String) throws -> HDF5Temp {
        try HDF5.check(id, what)
        return HDF5Temp(id: id, closer: H5Sclose)
    }
    static func type(_ id: hid_t, _ what: String) throws -> HDF5Temp {
        try HDF5.check(id, what)
        return HDF5Temp(id: id, closer: H5Tclose)
    }
    static func plist(_ id: hid_t, _ what: String) throws -> HDF5Temp {
        try HDF5.check(id, what)
        return HDF5Temp(id: id, closer: H5Pclose)
    }

    /// A simple dataspace of `dims` (with optional `maxDims`; `nil` entries mean unlimited).
    static func simpleSpace(_ dims: [Int], maxDims: [Int?]? = nil) throws -> HDF5Temp {
        var d = dims.map { hsize_t($0) }
        if let maxDims {
            var m = maxDims.map { $0.map { hsize_t($0) } ?? rl_H5S_UNLIMITED() }
            return try space(H5Screate_simple(Int32(d.count), &d, &m), "create a dataspace of shape \(dims)")
        }
        return try space(H5Screate_simple(Int32(d.count), &d, nil), "create a dataspace of shape \(dims)")
    }

    /// A fixed-length, null-padded UTF-8 string type of `width` bytes.
    static func fixedUTF8String(width: Int) throws -> HDF5Temp {
        let t = try type(H5Tcopy(rl_H5T_C_S1()), "create a string type")
        try HDF5.check(H5Tset_size(t.id, max(1, width)), "size a string type")
        try HDF5.check(H5Tset_strpad(t.id, H5T_STR_NULLPAD), "pad a string type with nulls")
        try HDF5.check(H5Tset_cset(t.id, H5T_CSET_UTF8), "set a string type to UTF-8")
        return t
    }

    /// The variable-length UTF-8 string type.
    static func utf8String() throws -> HDF5Temp {
        let t = try type(H5Tcopy(rl_H5T_C_S1()), "create a string type")
        try HDF5.check(H5Tset_size(t.id, rl_H5T_VARIABLE()), "make a variable-length string type")
        try HDF5.check(H5Tset_cset(t.id, H5T_CSET_UTF8), "set a string type to UTF-8")
        return t
    }
}

/// Element types RuleLens stores.
public enum HDF5ElementType: String, Sendable {
    case float32, float64, int32, int64, string

    /// The in-memory type to read/write with (strings are variable-length UTF-8).
    func memoryType() throws -> HDF5Temp {
        switch self {
        case .float32: return try .type(H5Tcopy(rl_H5T_NATIVE_FLOAT()), "copy a float type")
        case .float64: return try .type(H5Tcopy(rl_H5T_NATIVE_DOUBLE()), "copy a double type")
        case .int32: return try .type(H5Tcopy(rl_H5T_NATIVE_INT32()), "copy an int32 type")
        case .int64: return try .type(H5Tcopy(rl_H5T_NATIVE_INT64()), "copy an int64 type")
        case .string: return try .utf8String()
        }
    }

    /// The little-endian file type (what h5py reports as `<f4`, `<i4`, …).
    func fileType() throws -> HDF5Temp {
        switch self {
        case .float32: return try .type(H5Tcopy(rl_H5T_IEEE_F32LE()), "copy a float type")
        case .float64: return try .type(H5Tcopy(rl_H5T_IEEE_F64LE()), "copy a double type")
        case .int32: return try .type(H5Tcopy(rl_H5T_STD_I32LE()), "copy an int32 type")
        case .int64: return try .type(H5Tcopy(rl_H5T_STD_I64LE()), "copy an int64 type")
        case .string: return try .utf8String()
        }
    }

    /// Classifies a stored type; nil for types RuleLens does not read (compound, enum, …).
    static func classify(_ typeID: hid_t) -> HDF5ElementType? {
        switch H5Tget_class(typeID) {
        case H5T_FLOAT: return H5Tget_size(typeID) == 4 ? .float32 : .float64
        case H5T_INTEGER: return H5Tget_size(typeID) <= 4 ? .int32 : .int64
        case H5T_STRING: return .string
        default: return nil
        }
    }
}
