"""`rulelens data subset`: nested training subsets of one data folder with its test part unchanged and a validation
part no subset contains — checked against the source files read here."""
import json

from conftest import run_rulelens


def lines(path):
    return [l for l in path.read_text().splitlines() if l.strip()]


def test_subsets_are_nested_disjoint_from_validation_and_share_the_test_part(tmp_path):
    run_rulelens("data", "generate", "--task", "math-derivation", "--count", 300, "--out", tmp_path / "d")
    source = lines(tmp_path / "d" / "train.jsonl")
    subsets = {}
    for n in (20, 60, 150):
        out = json.loads(run_rulelens("data", "subset", "--data", tmp_path / "d", "--train", n, "--validation", 30,
                                      "--seed", 4, "--out", tmp_path / f"s{n}", "--json").stdout)
        assert (out["train"], out["validation"], out["source_train"]) == (n, 30, len(source))
        subsets[n] = lines(tmp_path / f"s{n}" / "train.jsonl")
        assert (tmp_path / f"s{n}" / "test.jsonl").read_bytes() == (tmp_path / "d" / "test.jsonl").read_bytes()
        validation = lines(tmp_path / f"s{n}" / "validation.jsonl")
        assert validation == lines(tmp_path / "s20" / "validation.jsonl")          # one validation set for every size
        assert not set(validation) & set(subsets[n]) and set(validation) <= set(source) and set(subsets[n]) <= set(source)
        meta = json.loads((tmp_path / f"s{n}" / "meta.json").read_text())
        assert meta["counts"] == {"train": n, "test": out["test"], "validation": 30}
    assert subsets[60][:20] == subsets[20] and subsets[150][:60] == subsets[60]     # nested
    assert subsets[20] != source[:20]                                               # a seeded order, not the file's
    # Training on a subset folder works as on the generated one.
    run_rulelens("train", "--data", tmp_path / "s20", "--out", tmp_path / "m", "--layers", 1, "--heads", 2, "--d-model", 16,
                 "--ctx", 160, "--steps", 2, "--batch", 4, "--warmup", 1, "--threads", 1, "--quiet")


def test_too_large_a_subset_is_refused_and_writes_nothing(tmp_path):
    run_rulelens("data", "generate", "--task", "syllogism", "--count", 50, "--out", tmp_path / "d")
    proc = run_rulelens("data", "subset", "--data", tmp_path / "d", "--train", 30, "--validation", 10, "--out", tmp_path / "s",
                        check=False)
    assert proc.returncode == 1 and "more than the 35 training examples" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "s").exists()
