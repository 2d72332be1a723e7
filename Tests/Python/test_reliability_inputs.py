"""Issue 8 item 7: inputs people have — h5py's fixed-length byte strings (`S` dtypes) and int8 / uint8 / float64
columns work as --label and as data, and give the same numbers as the canonical encodings."""
import json

import h5py
import numpy as np
from sklearn.metrics import silhouette_score

from conftest import run_rulelens


def test_h5py_dtypes_as_labels_and_data(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[:, 0] += 3 * y
    path = tmp_path / "inputs.h5"
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["X64"] = X.astype(np.float64)
        f["X_i8"] = np.clip(X * 10, -127, 127).astype(np.int8)
        f["X_u8"] = np.clip(X * 10 + 128, 0, 255).astype(np.uint8)
        f["X_i8_as_f32"] = np.clip(X * 10, -127, 127).astype(np.int8).astype(np.float32)
        f["X_u8_as_f32"] = np.clip(X * 10 + 128, 0, 255).astype(np.uint8).astype(np.float32)
        f["y"] = y.astype(np.int32)
        f["y_S"] = np.array([b"rule%d" % v for v in y], dtype="S8")      # h5py fixed-length ASCII
        f["y_str"] = np.array(["rule%d" % v for v in y], dtype=h5py.string_dtype())
        f["y_i8"] = y.astype(np.int8)
        f["y_u8"] = y.astype(np.uint8)
        f["y_f64"] = y.astype(np.float64)

    def silhouette(site, label):
        proc = run_rulelens("probe", "separability", "--file", path, "--site", site, "--label", label, "--json")
        return json.loads(proc.stdout)["sites"][0]["silhouette"]

    reference = silhouette("/X", "/y")
    assert abs(reference - silhouette_score(X.astype(np.float64), y)) < 1e-4
    for label in ["/y_S", "/y_str", "/y_i8", "/y_u8", "/y_f64"]:
        assert silhouette("/X", label) == reference, label
    assert abs(silhouette("/X64", "/y_S") - reference) < 1e-6
    assert silhouette("/X_i8", "/y_u8") == silhouette("/X_i8_as_f32", "/y")
    assert silhouette("/X_u8", "/y_S") == silhouette("/X_u8_as_f32", "/y")

    # The control task of `probe linear` reads a string column too: an `S` column works as --control-type.
    proc = run_rulelens("probe", "linear", "--file", path, "--site", "/X", "--label", "/y_S", "--control-type", "/y_S", "--json")
    assert json.loads(proc.stdout)["sites"][0]["accuracy"] > 0.9
