"""docs/reference/ is exactly what `rulelens reference` writes: every verb's page, the pages of the commands that are
not verbs (run, findings, info, …) and the index, so the committed pages say what the declarations say."""
from conftest import ROOT, run_rulelens


def test_committed_pages_are_the_generated_ones(tmp_path):
    run_rulelens("reference", "--out", tmp_path / "ref")
    generated = {p.name: p.read_text() for p in (tmp_path / "ref").glob("*.md")}
    committed = {p.name: p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md")}
    assert set(committed) == set(generated), "regenerate with `rulelens reference --out docs/reference`"
    for name, text in generated.items():
        assert committed[name] == text, f"docs/reference/{name} is out of date: regenerate with `rulelens reference --out docs/reference`"
    assert "findings.md" in generated and "run.md" in generated
