import Foundation
import RuleLensVerbs

/// The JSON Schema of a spec (Probes/rulelens-spec.schema.json), generated: the spec's own keys from the skeleton
/// below, every step's options from the step registry (so from each verb's declaration). `rulelens run --schema`
/// prints it; a test checks that the committed file is this output.
public enum SpecSchema {
    public static func json() throws -> String {
        var schema = try JSONSerialization.jsonObject(with: Data(skeleton.utf8)) as! [String: Any]
        var defs = schema["$defs"] as! [String: Any]
        var steps: [String: Any] = [:]
        for kind in StepRegistry.all {
            var properties: [String: Any] = ["id": ["$ref": "#/$defs/common/id"], "quick": ["$ref": "#/$defs/common/quick"]]
            for option in kind.options {
                var p: [String: Any]
                switch option.type {
                case .choice(let values):
                    p = ["anyOf": [["enum": values], ["type": "string", "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}", "description": "a ${variable}"]]]
                case .list: p = ["$ref": "#/$defs/list"]
                case .bool: p = ["anyOf": [["type": "boolean"], ["type": "string"]]]
                default: p = ["$ref": "#/$defs/value"]
                }
                if !option.help.isEmpty { p["description"] = option.help }
                properties[option.name] = p
            }
            var step: [String: Any] = ["type": "object", "additionalProperties": false, "properties": properties,
                                       "description": kind.summary]
            let required = kind.options.filter(\.required).map(\.name)
            if !required.isEmpty { step["required"] = required }
            steps[kind.kind] = step
        }
        defs["step"] = ["type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false, "properties": steps]
        schema["$defs"] = defs
        let data = try JSONSerialization.data(withJSONObject: schema, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Everything but the steps: the spec's own keys (name, claim, vars, sweep, steps, expect) and shared definitions.
    static let skeleton = #"""
{
 "$schema": "https://json-schema.org/draft/2020-12/schema",
 "$id": "rulelens-spec.schema.json",
 "title": "RuleLens experiment spec (Probes/NAME.yaml)",
 "description": "A declarative experiment run by `rulelens run`. See Probes/README.md. Editors: point YAML language servers at this file, e.g. a first line `# yaml-language-server: $schema=rulelens-spec.schema.json`.",
 "type": "object",
 "required": [
  "name",
  "claim",
  "steps"
 ],
 "additionalProperties": false,
 "properties": {
  "name": {
   "type": "string",
   "description": "Title of the experiment (the report's title)."
  },
  "claim": {
   "type": "string",
   "description": "The finding, stated so it can fail."
  },
  "study": {
   "description": "The study the claim comes from: its citation, or a mapping with the study's setting and headline number and the expression that gives this run's number.",
   "oneOf": [
    {
     "type": "string"
    },
    {
     "type": "object",
     "required": [
      "citation"
     ],
     "additionalProperties": false,
     "properties": {
      "citation": {
       "type": "string",
       "description": "Who and where."
      },
      "setting": {
       "type": "string",
       "description": "The study's setting for this claim (model, data, split)."
      },
      "measure": {
       "type": "string",
       "description": "What the headline number measures."
      },
      "number": {
       "type": [
        "string",
        "number"
       ],
       "description": "The study's headline number, as it reports it."
      },
      "here": {
       "type": "string",
       "description": "Expression giving this run's number for the same measure, e.g. mean(eval.test.inside) (over seeds, with its interval)."
      }
     }
    }
   ]
  },
  "deviations": {
   "type": "array",
   "description": "How this experiment departs from the study: model, pretrained or from scratch, tokenizer, positions, data size, …",
   "items": {
    "type": "object",
    "required": [
     "aspect",
     "study",
     "here"
    ],
    "additionalProperties": false,
    "properties": {
     "aspect": {
      "type": "string"
     },
     "study": {
      "type": "string"
     },
     "here": {
      "type": "string"
     }
    }
   }
  },
  "seeds": {
   "description": "Run the steps once per seed (${seed}): a count N (seeds 0..N-1) or a list. Statistics (mean, ci_low, ci_high, sd) range over them; --quick keeps the first two.",
   "oneOf": [
    {
     "type": "integer",
     "minimum": 1
    },
    {
     "type": "array",
     "minItems": 1,
     "items": {
      "type": "integer",
      "minimum": 0
     }
    }
   ]
  },
  "preconditions": {
   "type": "array",
   "description": "Checks that must hold for the expectations to test anything; an expectation whose precondition fails is INCONCLUSIVE.",
   "items": {
    "oneOf": [
     {
      "type": "string"
     },
     {
      "type": "object",
      "required": [
       "that"
      ],
      "additionalProperties": false,
      "properties": {
       "that": {
        "type": "string"
       },
       "why": {
        "type": "string"
       },
       "id": {
        "type": "string",
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
        "description": "Named by expectations' needs: (default p1, p2, …)."
       }
      }
     }
    ]
   }
  },
  "description": {
   "type": "string",
   "description": "How the experiment tests the claim."
  },
  "vars": {
   "type": "object",
   "description": "Variables, used as ${name} in any option.",
   "propertyNames": {
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
   },
   "additionalProperties": {
    "type": [
     "string",
     "number",
     "boolean",
     "array"
    ]
   }
  },
  "quick": {
   "type": "object",
   "description": "Replacement values of vars under --quick.",
   "additionalProperties": {
    "type": [
     "string",
     "number",
     "boolean",
     "array"
    ]
   }
  },
  "sweep": {
   "description": "Variables with several values: one variant per combination (mapping), or exactly the listed cases (list of mappings).",
   "oneOf": [
    {
     "type": "object",
     "propertyNames": {
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
     },
     "additionalProperties": {
      "type": "array",
      "minItems": 1,
      "items": {
       "type": [
        "string",
        "number"
       ]
      }
     }
    },
    {
     "type": "array",
     "minItems": 1,
     "items": {
      "type": "object",
      "additionalProperties": {
       "type": [
        "string",
        "number"
       ]
      }
     }
    }
   ]
  },
  "steps": {
   "type": "array",
   "minItems": 1,
   "items": {
    "$ref": "#/$defs/step"
   }
  },
  "expect": {
   "type": "array",
   "items": {
    "oneOf": [
     {
      "type": "string",
      "description": "An expression over results, e.g. eval.test.centre < eval.test.rim - 0.2"
     },
     {
      "type": "object",
      "required": [
       "that"
      ],
      "additionalProperties": false,
      "properties": {
       "that": {
        "type": "string"
       },
       "why": {
        "type": "string"
       },
       "needs": {
        "type": "array",
        "items": {
         "type": "string"
        },
        "description": "The precondition ids this check depends on (default: every precondition; [] for none)."
       }
      }
     }
    ]
   }
  }
 },
 "$defs": {
  "value": {
   "type": [
    "string",
    "number",
    "boolean"
   ]
  },
  "list": {
   "description": "A repeatable option: a YAML list, or one value.",
   "oneOf": [
    {
     "type": [
      "string",
      "number"
     ]
    },
    {
     "type": "array",
     "items": {
      "type": [
       "string",
       "number"
      ]
     }
    }
   ]
  },
  "common": {
   "id": {
    "type": "string",
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "description": "Step id (default: the kind, - as _); results are read as ID.key"
   },
   "quick": {
    "type": "object",
    "description": "Options replaced under --quick"
   }
  }
 }
}
"""#
}
