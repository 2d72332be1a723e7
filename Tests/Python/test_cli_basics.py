from conftest import run_rulelens


def test_version_and_help():
    assert run_rulelens("--version").stdout.strip().count(".") == 2
    assert "rule-governed" in run_rulelens("--help").stdout
