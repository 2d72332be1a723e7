import Foundation
#if canImport(Glibc)
import Glibc
#endif

// How every command writes its outputs:
//   • each file is built under a temporary name beside its final path (`.NAME.tmp-PID-N`) and renamed into place
//     only when complete (`AtomicFile`);
//   • inside an `OutputCommit` (a verb's run), those renames wait until the whole command has succeeded, so a
//     failure part-way leaves none of its outputs, and a folder the command created is removed again;
//   • an output another process may continue (`train`, `dump`) is held by an `OutputLock` for the writer's life;
//   • a file-system failure becomes a `RuleLensError` naming the path and the fix (`FileSystemError`).

/// Writing files so a crash never leaves a partial file under the final name.
public enum AtomicFile {
    /// Writes `data` to a temporary file beside `path`, fsyncs it (unless `sync` is false: for copies that can be
    /// rebuilt, where only a process kill, not a machine crash, must leave them whole), then publishes it at `path`
    /// (at once, or when the open `OutputCommit` commits).
    public static func write(_ data: Data, to path: String, sync: Bool = true) throws {
        try produce(path) { temp in
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw FileSystemError.error(errno: errno, path: path, action: "create") }
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var written = 0
                while written < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress!.advanced(by: written), raw.count - written)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw FileSystemError.error(errno: n == 0 ? ENOSPC : errno, path: path, action: "write") }
                    written += n
                }
            }
            if sync && fsync(fd) != 0 { throw FileSystemError.error(errno: errno, path: path, action: "write") }
        }
    }

    /// Runs `body(temp)`, which writes the file (or folder) that belongs at `path` under the temporary name `temp`,
    /// then publishes it; on any error `temp` is removed and the error, mapped when it is a file-system one, rethrown.
    public static func produce(_ path: String, _ body: (_ temp: String) throws -> Void) throws {
        try refuseFolder(at: path)
        let temp = temporaryPath(for: path)
        do {
            try body(temp)
            try publish(temp, at: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw FileSystemError.mapped(error, path: path, action: "write") ?? error
        }
    }

    /// Moves a finished temporary file or folder to `path`: now, or when the open `OutputCommit` commits.
    public static func publish(_ temp: String, at path: String) throws {
        if let commit = OutputCommit.current { commit.stage(temp: temp, final: path); return }
        try rename(temp, to: path)
    }

    /// `.NAME.tmp-PID-N` beside `path`; stale ones of dead processes beside it are removed first.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path, name = url.lastPathComponent
        removeStaleTemporaries(of: name, in: dir)
        return dir + "/.\(name).tmp-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
    }

    /// Whether `name` is one of our temporary names (`.NAME.tmp-PID-N`, `.NAME.partial-PID`).
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".partial-"))
    }

    /// Removes `.NAME.tmp-PID-…` files and folders in `dir` left by processes that no longer run.
    static func removeStaleTemporaries(of name: String, in dir: String) {
        let prefix = ".\(name).tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for other in names where other.hasPrefix(prefix) {
            guard let pid = Int32(other.dropFirst(prefix.count).prefix { $0.isNumber }), pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: dir + "/" + other)
        }
    }

    static func refuseFolder(at path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw FileSystemError.error(errno: EISDIR, path: path, action: "write")
        }
    }

    static func rename(_ temp: String, to path: String) throws {
        guard Glibc.rename(temp, path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: temp)
            throw FileSystemError.error(errno: code, path: path, action: "write")
        }
    }

    /// fsync of a folder, so the renames inside it survive a crash of the machine (not only of the process).
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError.error(errno: errno, path: path, action: "open the folder") }
        defer { close(fd) }
        _ = fsync(fd)
    }
}

/// The outputs of one command, published together. While a commit is open (`OutputCommit.run`), `AtomicFile`
/// leaves each finished file under its temporary name; when the command's body returns, every one is renamed into
/// place in the order written; when it throws, every temporary is removed, and so is each folder the command
/// created (`createFolder`). Nested `run`s join the outer commit.
public final class OutputCommit {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var open: OutputCommit?

    /// The commit in force (process-wide: a command's outputs, whichever thread writes them).
    public static var current: OutputCommit? { lock.lock(); defer { lock.unlock() }; return open }

    private let stateLock = NSLock()
    private var staged: [(temp: String, final: String)] = []
    private var removals: [String] = []
    private var created: [String] = []

    /// Runs `body` with its outputs committed together at the end.
    public static func run<T>(_ body: () throws -> T) throws -> T {
        if current != nil { return try body() }
        let commit = OutputCommit()
        lock.lock(); open = commit; lock.unlock()
        defer { lock.lock(); open = nil; lock.unlock() }
        let value: T
        do { value = try body() } catch {
            commit.abandon()
            throw error
        }
        do { try commit.commit() } catch {
            commit.abandon()
            throw error
        }
        return value
    }

    /// Runs `body` with the commit set aside: what it writes is published at once (scratch files a command writes
    /// and reads back, which are not its outputs).
    public static func immediately<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); let saved = open; open = nil; lock.unlock()
        defer { lock.lock(); open = saved; lock.unlock() }
        return try body()
    }

    /// Where the content of output `path` can be read before the commit (its temporary name while staged).
    public static func readable(_ path: String) -> String {
        guard let commit = current else { return path }
        commit.stateLock.lock(); defer { commit.stateLock.unlock() }
        return commit.staged.last { $0.final == path }?.temp ?? path
    }

    /// Creates folder `path` and any missing parents; inside a commit, a folder created here is removed again if the
    /// command fails. An existing file in the way is an error naming it.
    public static func createFolder(_ path: String) throws {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileSystemError.error(errno: EEXIST, path: path, action: "create the folder") }
            return
        }
        // The highest missing ancestor is what a failure removes.
        var top = URL(fileURLWithPath: path).standardizedFileURL
        while !fm.fileExists(atPath: top.deletingLastPathComponent().path) && top.path != "/" { top = top.deletingLastPathComponent() }
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw FileSystemError.mapped(error, path: path, action: "create the folder")
                ?? FileSystemError.error(errno: EIO, path: path, action: "create the folder")
        }
        if let commit = current { commit.stateLock.lock(); commit.created.append(top.path); commit.stateLock.unlock() }
    }

    /// Removes `path` when the commit is made (before the renames): an old file the new outputs replace or retire.
    public static func removeAtCommit(_ path: String) {
        if let commit = current { commit.stateLock.lock(); commit.removals.append(path); commit.stateLock.unlock() }
        else { unlink(path) }
    }

    func stage(temp: String, final: String) {
        stateLock.lock(); staged.append((temp, final)); stateLock.unlock()
    }

    func commit() throws {
        stateLock.lock(); let steps = staged, gone = removals; stateLock.unlock()
        for path in gone { unlink(path) }
        for (i, step) in steps.enumerated() {
            do { try AtomicFile.rename(step.temp, to: step.final) } catch {
                stateLock.lock(); staged = Array(steps[(i + 1)...]); stateLock.unlock()
                throw error
            }
        }
        stateLock.lock(); staged = []; created = []; stateLock.unlock()
    }

    func abandon() {
        stateLock.lock(); let steps = staged, folders = created; staged = []; created = []; stateLock.unlock()
        for step in steps.reversed() { try? FileManager.default.removeItem(atPath: step.temp) }
        for folder in folders.reversed() { try? FileManager.default.removeItem(atPath: folder) }
    }
}

/// An exclusive writer lock on an output (a folder, or a file) for the life of one process: `flock` on the folder
/// itself, or on a hidden `.NAME.lock` beside a file (the file itself is opened and replaced by its writer). The kernel
/// drops the lock when the process dies, so a killed writer never leaves it held; a second writer is told which
/// process holds it.
public final class OutputLock {
    let fd: Int32
    /// The lock file to remove on release (nil for a folder lock).
    let sidecar: String?

    /// Locks folder `dir` (which must exist).
    public init(folder dir: String, command: String) throws {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError.error(errno: errno, path: dir, action: "open the output folder") }
        sidecar = nil
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.holder(of: fd)
            close(fd)
            throw Self.busy(dir, command: command, holder: holder)
        }
    }

    /// Locks output file `path` (which need not exist yet) through `.NAME.lock` beside it.
    public init(file path: String, command: String) throws {
        let lockPath = Self.sidecarPath(path)
        sidecar = lockPath
        while true {
            let f = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard f >= 0 else { throw FileSystemError.error(errno: errno, path: path, action: "write") }
            guard flock(f, LOCK_EX | LOCK_NB) == 0 else {
                let holder = Self.holder(of: f)
                close(f)
                throw Self.busy(path, command: command, holder: holder)
            }
            // A releasing writer unlinks the lock file: retry when ours is no longer the file at that name.
            var mine = stat(), named = stat()
            if fstat(f, &mine) == 0, stat(lockPath, &named) == 0, mine.st_ino == named.st_ino, mine.st_dev == named.st_dev {
                fd = f
                return
            }
            close(f)
        }
    }

    deinit {
        if let sidecar { unlink(sidecar) }
        close(fd)
    }

    /// Refuses, naming the holder, when another process holds the lock of folder `dir`; takes nothing (a process
    /// must not call it while it holds that lock itself).
    public static func checkFree(folder dir: String, command: String) throws {
        try checkFree(dir, lockPath: dir, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, command: command)
    }

    /// Refuses, naming the holder, when another process holds the lock of output file `path`; takes nothing.
    public static func checkFree(file path: String, command: String) throws {
        try checkFree(path, lockPath: sidecarPath(path), flags: O_RDONLY | O_CLOEXEC, command: command)
    }

    static func checkFree(_ path: String, lockPath: String, flags: Int32, command: String) throws {
        let f = open(lockPath, flags)
        guard f >= 0 else { return }   // no lock file or folder: no writer
        defer { close(f) }
        guard flock(f, LOCK_EX | LOCK_NB) == 0 else { throw busy(path, command: command, holder: holder(of: f)) }
        flock(f, LOCK_UN)
    }

    static func sidecarPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().path + "/.\(url.lastPathComponent).lock"
    }

    static func busy(_ path: String, command: String, holder: Int32?) -> RuleLensError {
        let who = holder.map { "process \($0)" } ?? "another process"
        return RuleLensError("another `\(command)` (\(who)) is writing \(path) right now",
                             fix: "wait for \(who) to finish (or stop it\(holder.map { ": kill \($0)" } ?? "")), then run the command again; or choose another --out")
    }

    /// The process holding a flock on the file behind `fd`, from /proc/locks (nil when it cannot be told).
    static func holder(of fd: Int32) -> Int32? {
        var st = stat()
        guard fstat(fd, &st) == 0, let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        let dev = UInt64(st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let key = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(st.st_ino))
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            // "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" (a blocked waiter's line starts with "->").
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == key, let pid = Int32(fields[4]), pid != getpid() else { continue }
            return pid
        }
        return nil
    }
}

/// The one mapping from file-system failures (POSIX errors, Foundation's NSCocoaErrorDomain errors, HDF5's reports
/// of a failed system call) to `RuleLensError`s that name the path and say what to do.
public enum FileSystemError {
    /// The error for system error number `code` while doing `action` ("write", "create the folder") on `path`.
    public static func error(errno code: Int32, path rawPath: String, action: String) -> RuleLensError {
        let path = displayPath(rawPath)
        let dir = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        switch code {
        case EROFS:
            return RuleLensError("cannot \(action) \(path): the file system is read-only",
                                 fix: "choose an output on a writable disk (e.g. --out under your home folder)")
        case EACCES, EPERM:
            return RuleLensError("cannot \(action) \(path): permission denied",
                                 fix: "choose an output in a folder you may write, or change the permissions of \(dir)")
        case ENOSPC, EDQUOT:
            return RuleLensError("cannot \(action) \(path): the disk is full (no space left on device or quota reached); nothing partial was kept",
                                 fix: "free space on the disk holding \(dir) (df -h \(dir)), or choose an output on another disk")
        case EFBIG:
            return RuleLensError("cannot \(action) \(path): the file would exceed the largest file allowed (the shell's file-size limit, ulimit -f, or the file system's); nothing partial was kept",
                                 fix: "raise the limit (ulimit -f unlimited) or choose an output on another file system")
        case EEXIST:
            return RuleLensError("cannot \(action) \(path): a file is in the way (it exists and is not a folder)",
                                 fix: "choose another output path, or move the file away first")
        case ENOTDIR:
            return RuleLensError("cannot \(action) \(path): part of the path (\(firstFileOnPath(path) ?? dir)) is a file, not a folder",
                                 fix: "choose an output path whose folders are folders, or move that file away")
        case EISDIR:
            return RuleLensError("cannot \(action) \(path): it is a folder, where a file is expected",
                                 fix: "choose another output path, or move the folder away")
        case ENOENT:
            return RuleLensError("cannot \(action) \(path): the folder \(dir) does not exist",
                                 fix: "create \(dir) first (mkdir -p \(dir)), or choose an output in an existing folder")
        case ENAMETOOLONG:
            return RuleLensError("cannot \(action) \(path): the path or a name in it is too long", fix: "choose a shorter output path")
        case EMFILE, ENFILE:
            return RuleLensError("cannot \(action) \(path): too many open files", fix: "raise the limit (ulimit -n) or close other programs, then run again")
        case ENOTEMPTY:
            return RuleLensError("cannot \(action) \(path): a non-empty folder is in the way", fix: "choose another output path, or move the folder away")
        case EAGAIN:
            return RuleLensError("cannot \(action) \(path): another process has it open and locked",
                                 fix: "wait for that process (e.g. a `rulelens dump` still running) to finish, then run again")
        case EIO:
            return RuleLensError("cannot \(action) \(path): input/output error from the disk", fix: "check the disk (dmesg) and run again, or choose an output on another disk")
        case 0:
            return RuleLensError("cannot \(action) \(path) (the system gave no reason)",
                                 fix: "check that \(dir) exists, is writable and has free space")
        default:
            return RuleLensError("cannot \(action) \(path) (\(String(cString: strerror(code))))",
                                 fix: "check that \(dir) exists, is writable and has free space")
        }
    }

    /// The error for a thrown file-system error (nil when `error` is not one): its POSIX code, from a POSIX error,
    /// Foundation's Cocoa codes or their underlying error, or an HDF5 report carrying `errno = N`.
    public static func mapped(_ error: Error, path: String? = nil, action: String = "write") -> RuleLensError? {
        if let e = error as? RuleLensError {
            guard let code = embeddedErrno(e.problem) else { return nil }
            return self.error(errno: code, path: path ?? embeddedPath(e.problem) ?? "the output", action: action)
        }
        let ns = error as NSError
        let named = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        let shown = named ?? path ?? "the output"
        if let code = posixCode(ns) { return self.error(errno: code, path: shown, action: action) }
        // Foundation's "unknown" file errors (512, 256) carry no cause on Linux: find it from the path itself.
        guard ns.domain == NSCocoaErrorDomain, ns.code == NSFileWriteUnknownError || ns.code == NSFileReadUnknownError else { return nil }
        return self.error(errno: diagnose(shown), path: shown, action: action)
    }

    /// The likely cause of a failed write to `path` when the error did not say: a file where a folder should be, a
    /// read-only file system, a folder we may not write; 0 when none is seen.
    static func diagnose(_ path: String) -> Int32 {
        if firstFileOnPath(path) != nil { return ENOTDIR }
        var existing = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: existing.path) && existing.path != "/" { existing = existing.deletingLastPathComponent() }
        var fs = statvfs()
        if statvfs(existing.path, &fs) == 0 {
            if fs.f_flag & UInt(ST_RDONLY) != 0 { return EROFS }
            if fs.f_bavail == 0 { return ENOSPC }
        }
        if access(existing.path, W_OK) != 0 { return EACCES }
        return 0
    }

    /// The POSIX error number behind a Foundation error.
    static func posixCode(_ ns: NSError) -> Int32? {
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, let code = posixCode(underlying) { return code }
        guard ns.domain == NSCocoaErrorDomain else { return nil }
        switch ns.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return ENOENT
        case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return EACCES
        case NSFileWriteInvalidFileNameError: return ENOTDIR
        case NSFileWriteFileExistsError: return EEXIST
        case NSFileWriteOutOfSpaceError: return ENOSPC
        case NSFileWriteVolumeReadOnlyError: return EROFS
        case NSFileReadTooLargeError: return EFBIG
        default: return nil
        }
    }

    /// `path` as the user knows it: a temporary name (`.NAME.tmp-PID-N`) shown as the output it stands for.
    static func displayPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part -> Substring in
            guard part.hasPrefix("."), let r = part.range(of: ".tmp-") else { return part }
            return part[part.index(after: part.startIndex)..<r.lowerBound]
        }.joined(separator: "/")
    }

    /// `errno = 28` in an HDF5 error report of a failed system call.
    static func embeddedErrno(_ text: String) -> Int32? {
        guard let r = text.range(of: "errno = ") else { return nil }
        return Int32(text[r.upperBound...].prefix { $0.isNumber })
    }

    /// `name = '/path'` in an HDF5 error report.
    static func embeddedPath(_ text: String) -> String? {
        guard let r = text.range(of: "name = '") else { return nil }
        let rest = text[r.upperBound...]
        return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
    }

    /// The first component of `path` that exists and is not a folder.
    static func firstFileOnPath(_ path: String) -> String? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: prefix, isDirectory: &isDir) else { return nil }
            if !isDir.boolValue { return prefix.hasPrefix("./") ? String(prefix.dropFirst(2)) : prefix }
        }
        return nil
    }
}
