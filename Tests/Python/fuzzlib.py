"""The fuzzers' shared harness: run the binary with a timeout, classify each outcome, count by command.

Outcomes: `clear` (exit 1, an `error:` paragraph with a `fix:`, nothing half-written left), `correct` (success whose
output the case checked), `unclear` (non-zero exit without a clear error), `silent` (exit 0 where an error or a
different result was due), `crash` (a signal), `hang` (the timeout), `half-written` (an error that left an output
behind). Each fuzzer writes its counts to $RULELENS_FUZZ_REPORT_DIR/<name>.json when that is set;
`python Tests/Python/fuzzlib.py DIR` prints the totals over every report in DIR.
"""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import rulelens_bin

TIMEOUT = 20
BAD = ("unclear", "silent", "crash", "hang", "half-written")


def run(args, cwd=None, timeout=TIMEOUT, env=None, stdin=None):
    """(exit code or "hang", stdout, stderr) of `rulelens ARGS`; a signal is a negative exit code."""
    try:
        p = subprocess.run([rulelens_bin(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           cwd=cwd, env=env, input=stdin)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "hang", "", ""


def clear_error(code, err):
    """Exit 1 (2 from `rulelens run`, whose 1 is a failed expectation) and the error paragraph last on stderr (progress
    lines may come before it), with its fix."""
    if code not in (1, 2) or "error: " not in err:
        return False
    paragraph = err[err.rfind("error: ", 0, err.find("\nfix: ") if "\nfix: " in err else len(err)):]
    return (err.startswith("error: ") or "\nerror: " in err) and "\nfix: " in paragraph


def usage_error(code, err):
    """swift-argument-parser's own refusal (exit 64, `Error:` and the usage line) also names problem and fix."""
    return code == 64 and "Error: " in err


class Tally:
    """Counts per command; `failures` lists every case whose outcome is in BAD."""

    def __init__(self):
        self.counts = collections.defaultdict(collections.Counter)
        self.failures = []

    def record(self, command, case, outcome, detail=""):
        self.counts[command][outcome] += 1
        self.counts[command]["tried"] += 1
        if outcome in BAD:
            self.failures.append(f"{command} / {case}: {outcome} {str(detail)[:300]}")

    def expect_error(self, command, case, result, leftovers=()):
        """The case must be refused clearly and leave none of `leftovers` (paths) behind."""
        code, out, err = result
        if code == "hang":
            self.record(command, case, "hang")
        elif isinstance(code, int) and code < 0:
            self.record(command, case, "crash", f"signal {-code}: {err[-300:]}")
        elif clear_error(code, err) or usage_error(code, err):
            left = [str(p) for p in leftovers if Path(p).exists()]
            self.record(command, case, "half-written" if left else "clear", left)
        elif code == 0:
            self.record(command, case, "silent", out[-300:])
        else:
            self.record(command, case, "unclear", f"exit {code}: {err[-300:]}")

    def expect_success(self, command, case, result, check=None):
        """The case must succeed; `check(stdout)` (optional) returns None when the output is right, else why not.
        A clear refusal of a legal input counts as unclear: the user asked for something valid."""
        code, out, err = result
        if code == "hang":
            self.record(command, case, "hang")
        elif isinstance(code, int) and code < 0:
            self.record(command, case, "crash", f"signal {-code}: {err[-300:]}")
        elif code == 0:
            why = check(out) if check else None
            self.record(command, case, "silent" if why else "correct", why or "")
        else:
            self.record(command, case, "unclear", f"exit {code}: {err[-300:]}")

    def summary(self):
        total = collections.Counter()
        for c in self.counts.values():
            total.update(c)
        return {**{k: dict(v) for k, v in sorted(self.counts.items())}, "total": dict(total)}

    def report(self, name):
        """Prints the counts, writes them to $RULELENS_FUZZ_REPORT_DIR/NAME.json, returns the summary."""
        summary = self.summary()
        print(json.dumps(summary, indent=1))
        folder = os.environ.get("RULELENS_FUZZ_REPORT_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{name}.json").write_text(json.dumps(summary, indent=1))
        return summary


if __name__ == "__main__":
    total = collections.Counter()
    for path in sorted(Path(sys.argv[1]).glob("*.json")):
        total.update(json.loads(path.read_text())["total"])
    print(json.dumps(dict(total), indent=1))
