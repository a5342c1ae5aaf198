"""``medcam bench`` through the real entry function."""
from __future__ import annotations

import json

import pytest

from medcam.data.synthetic import write_busi_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_busi_folder(tmp_path_factory.mktemp("data") / "busi", [4, 6, 6], size=40, seed=0)


@pytest.mark.slow
def test_bench_runs_and_prints_rows(folder, tmp_path, cli):
    spec = tmp_path / "bench.yaml"
    spec.write_text("size: 32\ndata: {groups: null, val: 0.25, test: 0.3, augment: none}\n"
                    "train: {epochs: 1, batch_size: 8}\neval: {methods: [gradcam, random], gallery: 2}\n"
                    "models:\n  - {key: tiny, spec: {backbone: {name: tiny_cnn, width: 4}}}\n")
    out = tmp_path / "out"
    code, text, err = cli("bench", str(spec), "--data", str(folder), "--out", str(out), "--quiet", "--json",
                          "--threads", "1")
    assert code == 0, err
    rows = json.loads(text)
    assert [(r["model"], r["method"]) for r in rows] == [(None, "center_box"), (None, "center_gaussian"),
                                                         (None, "random_map"), ("tiny", "gradcam"), ("tiny", "random")]
    record = json.loads((out / "localization.json").read_text())
    assert record["command"].startswith("medcam bench ") and record["environment"]["torch_threads"] == 1
    code, _, err = cli("bench", str(spec), "--data", str(folder), "--out", str(out), "--quiet")
    assert code == 2 and err.startswith("error: ") and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_bad_spec_is_one_line_error(folder, tmp_path, cli):
    spec = tmp_path / "bad.yaml"
    spec.write_text("modles: []\n")
    code, _, err = cli("bench", str(spec), "--data", str(folder), "--out", str(tmp_path / "o"))
    assert code == 2 and err.strip() == ("error: modles: unknown key; did you mean 'models'? (keys: name, "
                                         "description, seed, size, threads, data, train, eval, faithfulness, "
                                         "baselines, models, notes)")
