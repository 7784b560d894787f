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


# ---------------------------------------------------------------- issue 12: schema gaps (defects 9 and 10)

@pytest.mark.parametrize("text, key, words", [
    ("pretrain:\n  lr: .inf\n", "pretrain.lr", "finite"),
    ("unlearn:\n  gp:\n    lambda_gp: .nan\n", "unlearn.gp.lambda_gp", "finite"),
    ("pretrain:\n  epochs: true\n", "pretrain.epochs", "integer"),
    ("pretrain:\n  epochs: '3'\n", "pretrain.epochs", "integer"),
    ("pretrain:\n  epochs: 3.0\n", "pretrain.epochs", "integer"),
    ("pretrain:\n  lr: true\n", "pretrain.lr", "number"),
    ("pretrain:\n  lr: 'fast'\n", "pretrain.lr", "number"),
    ("pretrain:\n  seed: -1\n", "pretrain.seed", "greater than or equal to 0"),
    ("prepare:\n  seed: 4294967296\n", "prepare.seed", "less than 4294967296"),
    ("forget:\n  seed: -1\n", "forget.seed", "greater than or equal to 0"),
    ("unlearn:\n  retrain:\n    seed: -5\n", "unlearn.retrain.seed", "greater than or equal to 0"),
    ("verify:\n  seed: -1\n", "verify.seed", "greater than or equal to 0"),
])
def test_non_finite_numbers_bools_as_ints_and_out_of_range_seeds_are_refused(tmp_path, text, key, words):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(path) in str(err.value) and key in str(err.value) and words in str(err.value)


def test_numbers_in_the_usual_yaml_spellings_still_load(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  lr: 1e-3\n  weight_decay: 0\n  seed: 4294967295\nunlearn:\n  gp:\n    lr: 5E-2\n")
    params = load_params(path)
    assert params.pretrain.lr == 1e-3 and params.pretrain.weight_decay == 0.0 and params.unlearn.gp.lr == 0.05
    assert params.pretrain.seed == 2**32 - 1


def test_duplicate_keys_are_refused_naming_the_key_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  epochs: 3\n  lr: 0.1\n  epochs: 5\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    msg = str(err.value)
    assert str(path) in msg and "duplicate key 'pretrain.epochs'" in msg and "line 4" in msg
    path.write_text("forget:\n  seed: 1\nforget:\n  seed: 2\n")
    with pytest.raises(ParamsError, match=r"duplicate key 'forget' .*line 3"):
        load_params(path)


def test_a_non_utf8_params_file_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"pretrain:\n  epochs: 3 # \xe9t\xe9\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(path) in str(err.value) and "not UTF-8" in str(err.value) and "byte 24" in str(err.value)
