import Foundation

/// A live progress line on stderr: rewritten in place (`\r`) when stderr is a terminal, otherwise printed as
/// plain lines at most every `plainInterval` seconds (plus the last step), so logs stay readable.
public final class ProgressLine {
    let isTTY: Bool
    let enabled: Bool
    let plainInterval: Double
    var lastPrint: Double = -.infinity
    var lastWidth = 0

    /// Whether this line prints anything.
    public var isEnabled: Bool { enabled }

    public init(enabled: Bool = true, plainInterval: Double = 2) {
        self.enabled = enabled
        self.isTTY = isatty(2) != 0
        self.plainInterval = plainInterval
    }

    /// Shows `text` as the current status (`final` forces output and ends the line).
    public func update(_ text: String, final: Bool = false) {
        guard enabled else { return }
        let now = ProgressLine.now()
        if isTTY {
            // Redraw at most ten times a second: fast steps would otherwise spend time on the terminal.
            guard final || now - lastPrint >= 0.1 else { return }
            lastPrint = now
            let padded = text + String(repeating: " ", count: max(0, lastWidth - text.count))
            lastWidth = text.count
            FileHandle.standardError.write(Data(("\r" + padded + (final ? "\n" : "")).utf8))
            if final { lastWidth = 0 }
        } else if final || now - lastPrint >= plainInterval {
            lastPrint = now
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    /// Erases the live line on a terminal (when the work it described is done and needs no final line).
    public func clear() {
        guard enabled, isTTY, lastWidth > 0 else { return }
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastWidth) + "\r").utf8))
        lastWidth = 0
    }

    /// Prints a standalone message (e.g. an eval result) without disturbing the live line.
    public func message(_ text: String) {
        guard enabled else { return }
        if isTTY && lastWidth > 0 {
            FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: lastWidth) + "\r").utf8))
            lastWidth = 0
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Monotonic seconds.
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// "1h02m", "3m05s", "12s".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        if seconds >= 1e8 { return String(format: "%.1e s", seconds) }   // years: Int(seconds) could overflow
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }

    /// "812", "45.2k", "1.3M".
    public static func rate(_ perSecond: Double) -> String {
        if perSecond >= 1e6 { return String(format: "%.1fM", perSecond / 1e6) }
        if perSecond >= 1e3 { return String(format: "%.1fk", perSecond / 1e3) }
        return String(format: "%.0f", perSecond)
    }
}

/// Counts the items of one phase of work on a `ProgressLine`: "LABEL 1200/3000 UNIT | 312 UNIT/s | ETA 6s", and when
/// the last item is done, "LABEL 3000/3000 UNIT | 312 UNIT/s | 9.6s" (throttled like every progress line).
public final class ProgressCounter {
    let line: ProgressLine
    let label: String
    let unit: String
    public let total: Int
    let began = ProgressLine.now()

    public init(_ line: ProgressLine, label: String, unit: String = "examples", total: Int) {
        self.line = line; self.label = label; self.unit = unit; self.total = total
    }

    /// Reports `done` of `total` items finished.
    public func update(_ done: Int) {
        let elapsed = max(1e-9, ProgressLine.now() - began)
        let rate = Double(done) / elapsed
        let final = done >= total
        let tail = final ? ProgressLine.duration(elapsed) : "ETA " + (done > 0 ? ProgressLine.duration(Double(total - done) / rate) : "?")
        let shortUnit = unit == "examples" ? "ex" : unit
        line.update("\(label) \(done)/\(total) \(unit) | \(ProgressLine.rate(rate)) \(shortUnit)/s | \(tail)", final: final)
    }
}
