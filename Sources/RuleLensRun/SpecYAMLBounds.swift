// libyaml's event API, which Yams wraps without exposing (CYaml is Yams's own C target, imported through it).
import CYaml
import RuleLensNumerics

/// Bounds a spec's YAML before Yams builds a tree of it: from libyaml's event stream (read in one loop, nothing
/// built), it counts uses of aliases and the number of values the document holds with every alias expanded.
///
/// Yams shares an aliased node rather than copying it, so building the tree is cheap even for an alias bomb; but
/// building checks mapping keys for duplicates by hashing them (which walks an aliased key's whole expansion), and
/// every later walk of the spec (conversion, substitution, fingerprints) is as large as the expansion. Counting the
/// expansion here, where an anchor's size is known once it closes, refuses a bomb in time linear in the text.
enum SpecYAMLBounds {
    static func check(_ text: String, path: String, limits: SpecLimits) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw RuleLensError("\(path): the YAML reader could not start (out of memory)", fix: "free some memory and rerun")
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var values = 0, aliases = 0
            // Open collections: their anchor and the count of values before them (their size is the difference).
            var open: [(anchor: String?, before: Int)] = []
            var anchoredSize: [String: Int] = [:]
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? ""
                    if problem.contains("nesting level") {
                        throw RuleLensError("\(path) line \(parser.problem_mark.line + 1): the YAML is nested more than 1000 levels deep",
                                            fix: "a spec needs a few levels (steps: - KIND: {option: value}); flatten the values")
                    }
                    return  // other syntax errors: Yams reports them with their line
                }
                defer { yaml_event_delete(&event) }
                var added = 0
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_SCALAR_EVENT:
                    added = 1
                    if let a = anchorName(event.data.scalar.anchor) { anchoredSize[a] = 1 }
                case YAML_ALIAS_EVENT:
                    aliases += 1
                    guard aliases <= limits.specAliases else {
                        throw limits.exceeded("spec-aliases", "\(path) line \(event.start_mark.line + 1): the spec uses too many aliases (*name)",
                                              lessFix: "write the values out, or use ${var} variables (vars:) instead of aliases")
                    }
                    added = anchorName(event.data.alias.anchor).flatMap { anchoredSize[$0] } ?? 1
                case YAML_SEQUENCE_START_EVENT:
                    open.append((anchorName(event.data.sequence_start.anchor), values))
                    added = 1
                case YAML_MAPPING_START_EVENT:
                    open.append((anchorName(event.data.mapping_start.anchor), values))
                    added = 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    if let closed = open.popLast(), let a = closed.anchor { anchoredSize[a] = values - closed.before }
                default:
                    break
                }
                // Every size recorded is at most `values`, which stays within the limit: no overflow.
                values += added
                guard values <= limits.specValues else {
                    throw limits.exceeded("spec-values", "\(path) line \(event.start_mark.line + 1): the spec holds too many YAML values once its aliases (*name) are expanded",
                                          lessFix: "shorten the lists, or alias smaller values")
                }
            }
        }
    }

    private static func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
