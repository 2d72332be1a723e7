import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// How one hook's [batch, …] values become stored rows: position axes padded to T (zeros past each
/// example's length; a key axis with slots in front of the positions, as the VAE decoder's memory, keeps those
/// too), and with a single kept position, the "pos" / "q_pos" axis dropped.
struct DumpSiteLayout {
    /// Hook name.
    let name: String
    /// Axis names of the hook without "batch" (e.g. ["head", "q_pos", "k_pos"]).
    let hookDims: [String]
    /// Axis removed when one position is kept (nil for --positions all).
    let selectedAxis: Int?
    /// What the writer stores per example.
    let spec: ActivationSiteSpec
    /// Keys in front of the positions on a "k_pos" axis (the VAE decoder's memory slot: 1; else 0), so an example
    /// of length L has L + keySlots real keys.
    let keySlots: Int

    /// True for axes that index sequence positions.
    static func isPosition(_ dim: String) -> Bool { dim == "pos" || dim == "q_pos" || dim == "k_pos" }

    init(name: String, model: any LanguageModel, maxLength T: Int, singlePosition: Bool) {
        self.name = name
        let fullDims = model.hookDims(name)
        let fullShape = model.hookShape(name, batch: 1, seqLen: T)
        hookDims = Array(fullDims.dropFirst())
        if let k = fullDims.firstIndex(of: "k_pos"), let q = fullDims.firstIndex(of: "q_pos") {
            keySlots = max(0, fullShape[k] - fullShape[q])
        } else {
            keySlots = 0
        }
        var rowShape = Array(fullShape.dropFirst())
        var rowDims = hookDims
        if singlePosition, let axis = hookDims.firstIndex(of: "pos") ?? hookDims.firstIndex(of: "q_pos") {
            selectedAxis = axis
            rowShape.remove(at: axis); rowDims.remove(at: axis)
        } else {
            selectedAxis = nil
        }
        spec = ActivationSiteSpec(name: name, rowShape: rowShape, rowDims: rowDims)
    }

    /// Copies example `e` of a hook's values (row shape `srcRow`, positions sized S ≤ T) into `dst`
    /// (one stored row, zeroed first). `length` is the example's real length; `pick` the kept position.
    func copyRow(from src: UnsafePointer<Float>, srcRow: [Int], to dst: UnsafeMutablePointer<Float>,
                 length: Int, pick: Int?) {
        dst.update(repeating: 0, count: spec.rowElements)
        let rank = srcRow.count
        var srcStrides = [Int](repeating: 1, count: rank)
        for a in stride(from: rank - 2, through: 0, by: -1) { srcStrides[a] = srcStrides[a + 1] * srcRow[a + 1] }
        // Destination strides per source axis (0 for the dropped axis).
        var dstStrides = [Int](repeating: 0, count: rank)
        var running = 1
        for a in stride(from: rank - 1, through: 0, by: -1) where a != selectedAxis {
            dstStrides[a] = running
            running *= DumpSiteLayout.isPosition(hookDims[a]) ? spec.rowShape[dstAxis(a)] : srcRow[a]
        }
        // Extent to copy per axis: real positions only; the kept position alone on the dropped axis.
        var lower = [Int](repeating: 0, count: rank), upper = srcRow
        for a in 0..<rank where DumpSiteLayout.isPosition(hookDims[a]) {
            upper[a] = min(length + (hookDims[a] == "k_pos" ? keySlots : 0), srcRow[a])
        }
        if let axis = selectedAxis, let pick { lower[axis] = pick; upper[axis] = pick + 1 }
        func walk(_ a: Int, _ s: Int, _ d: Int) {
            if a == rank - 1 {
                let n = upper[a] - lower[a]
                if n > 0 {
                    if srcStrides[a] == 1 && dstStrides[a] == 1 {
                        (dst + d + lower[a]).update(from: src + s + lower[a], count: n)
                    } else {
                        for i in lower[a]..<upper[a] { dst[d + i * dstStrides[a]] = src[s + i * srcStrides[a]] }
                    }
                }
                return
            }
            var i = lower[a]
            while i < upper[a] { walk(a + 1, s + i * srcStrides[a], d + i * dstStrides[a]); i += 1 }
        }
        walk(0, 0, 0)
    }

    /// Index in the stored row of source axis `a` (shifted when the selected axis precedes it).
    private func dstAxis(_ a: Int) -> Int {
        if let s = selectedAxis, a > s { return a - 1 }
        return a
    }
}
