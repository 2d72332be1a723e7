"""make bench: runs every side-by-side benchmark in one process tree and prints the tables.

Each bench_*.py in this folder exposes `main(rulelens_bench: str) -> str` returning a Markdown table
(RuleLens against its reference, with ratios). The combined report is printed and written to
Benchmarks/RESULTS.md.
"""
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    bench_bin = os.environ.get("RULELENS_BENCH_BIN", str(ROOT / ".build" / "release" / "rulelens-bench"))
    only = sys.argv[1:]
    sections = [f"# RuleLens benchmarks\n\nmachine: {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cores, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}\n"]
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem.removeprefix("bench_") not in only:
            continue
        spec = importlib.util.spec_from_file_location(script.stem, script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {script.name}", flush=True)
        table = module.main(bench_bin)
        print(table, flush=True)
        sections.append(table)
    (HERE / "RESULTS.md").write_text("\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
