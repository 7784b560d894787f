from pathlib import Path

import pytest

from unlearn.config import Params, ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert "retrain" in params.unlearn.methods


@pytest.mark.parametrize("text, key", [
    ("pretrain:\n  epochz: 3\n", "pretrain.epochz"),
    ("pretrain:\n  epochs: three\n", "pretrain.epochs"),
    ("pretrain:\n  epochs: 0\n", "pretrain.epochs"),
    ("forget:\n  fraction: 1.5\n", "forget.fraction"),
    ("unlearn:\n  methods: [gp, magic]\n", "unlearn.methods.1"),
    ("unlearn:\n  methods: [gp]\n", "unlearn"),
    ("verify:\n  thresholds:\n    auc_tolerance: -1\n", "verify.thresholds.auc_tolerance"),
])
def test_bad_params_name_the_key(tmp_path, text, key):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("pretrain: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_imagefolder_needs_root(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("prepare:\n  source: imagefolder\n")
    with pytest.raises(ParamsError, match="prepare.root"):
        load_params(path)
