#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RuleLensNumerics

/// What a path names, from stat(2) (links followed) — so that the runner decides how to read a path before it opens
/// it: a regular file is read up to the size stat gave (a /proc file that claims 0 bytes is read as empty, a growing
/// file is read as it was), a folder is listed, and anything else (/dev/zero, a FIFO, a socket) is never read.
enum SpecFileKind: Equatable {
    case missing
    case regular(size: Int, mtime: Double)
    /// A folder, with its device and inode (a folder reached twice through links is listed once).
    case folder(device: UInt64, inode: UInt64)
    /// Anything else: what it is, in words.
    case special(String)

    init(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = errno
            self = reason == ENOENT || reason == ENOTDIR ? .missing : .special("a path that cannot be examined (\(String(cString: strerror(reason))))")
            return
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            #if canImport(Darwin)
            let mtime = Double(st.st_mtimespec.tv_sec) + Double(st.st_mtimespec.tv_nsec) / 1e9
            #else
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            #endif
            self = .regular(size: Int(st.st_size), mtime: mtime)
        case S_IFDIR: self = .folder(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        case S_IFCHR: self = .special("a character device")
        case S_IFBLK: self = .special("a block device")
        case S_IFIFO: self = .special("a FIFO (named pipe)")
        case S_IFSOCK: self = .special("a socket")
        default: self = .special("not a regular file")
        }
    }
}

enum SpecFiles {
    /// Calls `body` with successive pieces of the regular file at `path`, at most `size` bytes in all.
    static func read(_ path: String, size: Int, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw RuleLensError("cannot read \(path) (\(String(cString: strerror(errno))))", fix: "check that it is a file you may read")
        }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var left = size
        while left > 0 {
            let n = Glibc_read(fd, buffer.baseAddress, min(left, buffer.count))
            if n < 0 {
                if errno == EINTR { continue }
                throw RuleLensError("cannot read \(path) (\(String(cString: strerror(errno))))", fix: "check that it is a file you may read")
            }
            if n == 0 { break }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            left -= n
        }
    }

    /// The whole of a small regular file (a spec), refused when it is a folder, a device or larger than `limit` bytes.
    static func contents(_ path: String, what: String, limit: Int, limitName: String, limits: SpecLimits, fix: String) throws -> Data {
        switch SpecFileKind(path) {
        case .missing:
            throw RuleLensError("cannot read \(what) \(path): there is no such file", fix: fix)
        case .folder:
            throw RuleLensError("\(what) \(path) is a folder, not a file", fix: fix)
        case .special(let kind):
            throw RuleLensError("\(what) \(path) is \(kind), not a regular file", fix: fix)
        case .regular(let size, _):
            guard size <= limit else {
                throw limits.exceeded(limitName, "\(what) \(path) has \(size) bytes", lessFix: "check that it is the right file")
            }
            var data = Data()
            try read(path, size: size) { data.append(contentsOf: $0) }
            // A file that says it is empty may still have content (a /proc file): read it up to the limit.
            if size == 0 { try read(path, size: limit + 1) { data.append(contentsOf: $0) } }
            guard data.count <= limit else {
                throw limits.exceeded(limitName, "\(what) \(path) has more than \(limit) bytes", lessFix: "check that it is the right file")
            }
            return data
        }
    }

    /// The regular files under the folder `root` (paths relative to it, sorted) with their sizes and times: hidden
    /// names (stamps, temporary files) skipped, other kinds of file skipped, links followed but each folder listed
    /// once. Refused past `limits.inputFiles` entries or `limits.inputBytes` bytes, before any file is read.
    static func listing(_ root: String, limits: SpecLimits) throws -> [(path: String, size: Int, mtime: Double)] {
        var files: [(path: String, size: Int, mtime: Double)] = []
        var seen = Set<[UInt64]>()
        var pending = [""]
        var entries = 0, bytes = 0
        if case .folder(let d, let i) = SpecFileKind(root) { seen.insert([d, i]) }
        while let rel = pending.popLast() {
            let dir = rel.isEmpty ? root : (root as NSString).appendingPathComponent(rel)
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
                throw RuleLensError("cannot list the input folder \(dir)", fix: "check its permissions")
            }
            for name in names where !name.hasPrefix(".") {
                entries += 1
                guard entries <= limits.inputFiles else {
                    throw limits.exceeded("input-files", "input folder \(root) holds too many files", lessFix: "name a smaller folder (a step's inputs are fingerprinted whole)")
                }
                let child = rel.isEmpty ? name : rel + "/" + name
                switch SpecFileKind((root as NSString).appendingPathComponent(child)) {
                case .regular(let size, let mtime):
                    let (sum, overflow) = bytes.addingReportingOverflow(size)
                    bytes = overflow ? Int.max : sum
                    guard bytes <= limits.inputBytes else {
                        throw limits.exceeded("input-bytes", "input folder \(root) holds too many bytes", lessFix: "name a smaller folder (a step's inputs are fingerprinted whole)")
                    }
                    files.append((child, size, mtime))
                case .folder(let d, let i):
                    if seen.insert([d, i]).inserted { pending.append(child) }
                case .missing, .special:
                    continue  // a dangling link, a device, a FIFO: not content
                }
            }
        }
        return files.sorted { $0.path < $1.path }
    }
}

/// read(2), named apart from `SpecFiles.read`.
@inline(__always) private func Glibc_read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(fd, buffer, count)
    #else
    return Darwin.read(fd, buffer, count)
    #endif
}
