"""The operand-plane accuracy report: the .npy grid, the summary (inside / centre / rim / rings) and the SVG,
checked against numpy on synthetic predictions."""
import json
import random
import xml.etree.ElementTree as ET

import numpy as np

from conftest import run_rulelens


def test_plane_report_matches_numpy(tmp_path):
    data = tmp_path / "d"
    run_rulelens("data", "generate", "--task", "addition", "--split", "leave-square-out", "--out", data)
    test = [json.loads(l) for l in (data / "test.jsonl").read_text().splitlines()]
    train = [json.loads(l) for l in (data / "train.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    preds, truth = [], {}
    for e in train[:3000] + test:
        ring = max(abs(e["a"] - 50), abs(e["b"] - 50))
        ok = ring > 6 or rng.random() < 0.2          # a "hole": wrong near the centre, mostly
        if rng.random() < 0.5:
            preds.append({"a": e["a"], "b": e["b"], "correct": ok})
        else:                                         # the other way to say it: a prediction text
            preds.append({"a": e["a"], "b": e["b"], "answer": e["answer"], "prediction": e["answer"] if ok else "0"})
        truth[(e["a"], e["b"])] = ok
    pfile = tmp_path / "preds.jsonl"
    pfile.write_text("".join(json.dumps(p) + "\n" for p in preds))
    r = run_rulelens("data", "plane", data, "--predictions", pfile, "--out", tmp_path / "out" / "plane")
    assert "inside" in r.stdout and "rim" in r.stdout

    grid = np.load(tmp_path / "out" / "plane.npy")
    assert grid.shape == (100, 100) and grid.dtype == np.float64
    expect = np.full((100, 100), np.nan)
    for (a, b), ok in truth.items():
        expect[a, b] = float(ok)
    np.testing.assert_array_equal(grid, expect)

    a, b = np.meshgrid(np.arange(100), np.arange(100), indexing="ij")
    ring = np.maximum(abs(a - 50), abs(b - 50))
    seen = ~np.isnan(expect)
    summary = json.loads((tmp_path / "out" / "plane.json").read_text())
    assert np.isclose(summary["inside"], np.nanmean(expect[ring <= 10]))
    assert np.isclose(summary["central"], np.nanmean(expect[ring <= 5]))
    assert np.isclose(summary["rim"], np.nanmean(expect[(ring > 5) & (ring <= 10)]))
    assert np.isclose(summary["outside"], np.nanmean(expect[(ring > 10) & seen]))
    rings = summary["squares"][0]["rings"]
    assert len(rings) == 11
    for d in range(11):
        assert np.isclose(rings[d], np.nanmean(expect[ring == d]))
    assert summary["central"] < summary["rim"]

    svg = ET.parse(tmp_path / "out" / "plane.svg").getroot()
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) > 10000                              # one per cell, plus frame and colour bar
    outlines = [r for r in rects if r.get("fill") == "none" and r.get("stroke") == "#e4002b"]
    assert len(outlines) == 1 and float(outlines[0].get("width")) > 0


def test_plane_report_errors(tmp_path):
    data = tmp_path / "s"
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "48", "--out", data)
    pfile = tmp_path / "p.jsonl"
    pfile.write_text('{"a": 1, "b": 2, "correct": true}\n')
    r = run_rulelens("data", "plane", data, "--predictions", pfile, "--out", tmp_path / "x", check=False)
    assert r.returncode != 0 and "no operand plane" in r.stderr
    data2 = tmp_path / "a"
    run_rulelens("data", "generate", "--task", "addition", "--out", data2)
    pfile.write_text('{"a": 1, "b": 2}\n')
    r = run_rulelens("data", "plane", data2, "--predictions", pfile, "--out", tmp_path / "x", check=False)
    assert r.returncode != 0 and "line 1" in r.stderr
