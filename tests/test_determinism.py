"""Issue 12 defect 6: results depended on the CPU thread count. A stage pins it (and deterministic algorithms)
through ``unlearn.determinism.configure``, and records the environment the bytes came from."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import torch

from unlearn import determinism
from unlearn.learners import build_learner
from unlearn.models.checkpoint import torch_bytes
from unlearn.training import fit, make_optimizer, trainable

CONFIG = {"method": "supervised", "backbone": {"name": "small_cnn", "width": 16}, "augment": "none",
          "in_channels": 1, "num_classes": 10, "temperature": 0.5, "projection_dim": 8, "queue_size": 16,
          "momentum": 0.9, "training": {"epochs": 2, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.0,
                                       "optimizer": "adam", "seed": 0}}


def train_digest(threads: int | None = None) -> str:
    """sha256 of a small model trained for 2 epochs after ``configure`` (1 vs 2 threads differ here)."""
    determinism.configure(0, threads)
    learner = build_learner(CONFIG)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(256, 1, 8, 8, generator=g), torch.randint(0, 10, (256,), generator=g)
    optimizer = make_optimizer(trainable(learner), "adam", 1e-2, 0.0)
    fit(learner, lambda idx: learner.training_loss(x[idx], y[idx]), 256, epochs=2, batch_size=64,
        optimizer=optimizer, generator=g)
    return hashlib.sha256(torch_bytes(learner.state_dict())).hexdigest()


@pytest.fixture
def restore_torch(monkeypatch):
    """Undo what ``configure`` changes process-wide, so later tests see the session as it was."""
    from threadpoolctl import threadpool_limits

    for var in (*determinism.THREAD_VARS, "CUBLAS_WORKSPACE_CONFIG"):  # monkeypatch restores them afterwards
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:
            monkeypatch.delenv(var, raising=False)
    threads, mode = torch.get_num_threads(), determinism.deterministic_mode()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.mkldnn.deterministic
    pools = threadpool_limits(limits=None)
    yield
    pools.restore_original_limits()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(mode != "off", warn_only=mode == "warn_only")
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.mkldnn.deterministic) = cudnn


def test_the_thread_count_is_fixed_whatever_the_machine_or_omp_says():
    """Two processes told different OMP/MKL thread counts train byte-identical models: configure pins it."""
    code = ("from tests.test_determinism import train_digest; import torch; "
            "print(train_digest(), torch.get_num_threads())")
    out = []
    for omp in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if k != determinism.THREADS_ENV}
        env.update(OMP_NUM_THREADS=omp, MKL_NUM_THREADS=omp)
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        out.append(run.stdout.split())
    assert out[0] == out[1]
    assert out[0][1] == str(determinism.DEFAULT_THREADS)


def test_a_given_thread_count_is_reproducible(restore_torch):
    assert train_digest(2) == train_digest(2)
    assert train_digest(1) == train_digest(1)


def test_configure_pins_threads_deterministic_algorithms_and_seeds(restore_torch, monkeypatch):
    monkeypatch.setenv(determinism.THREADS_ENV, "2")
    env = determinism.configure(5)
    assert torch.get_num_threads() == 2 and env["threads"] == 2
    assert torch.are_deterministic_algorithms_enabled()
    assert env["deterministic"] == ("warn_only" if torch.cuda.is_available() else "strict")
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["OMP_NUM_THREADS"] == "2" and os.environ["CUBLAS_WORKSPACE_CONFIG"]
    a = torch.rand(3)
    determinism.configure(5, threads=1)
    assert torch.equal(a, torch.rand(3)) and torch.get_num_threads() == 1  # the argument wins over the env


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", " "])
def test_a_bad_thread_setting_is_one_error_naming_it(monkeypatch, value):
    monkeypatch.setenv(determinism.THREADS_ENV, value)
    if value.strip() == "":
        assert determinism.resolve_threads() == determinism.DEFAULT_THREADS
        return
    with pytest.raises(ValueError, match=f"^{determinism.THREADS_ENV}: expected a positive integer"):
        determinism.resolve_threads()


def test_bad_thread_argument():
    for bad in (0, True, "3"):
        with pytest.raises(ValueError, match="^threads: "):
            determinism.resolve_threads(bad)  # type: ignore[arg-type]
    assert determinism.resolve_threads(4) == 4


def test_environment_records_what_may_differ_across_machines(restore_torch):
    determinism.configure(0, threads=1)
    env = determinism.environment("cpu")
    assert {"python", "torch", "torch_git", "numpy", "platform", "cpu_model", "cpu_capability", "threads",
            "deterministic", "device"} <= set(env)
    assert env["threads"] == 1 and env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env == determinism.environment("cpu")  # stable within a machine: it may sit in DVC-tracked reports
    assert all(isinstance(v, (str, int)) for v in env.values())


def test_numpy_only_configure_does_not_import_torch():
    code = ("import sys; from unlearn import determinism; e = determinism.configure(0, torch_backend=False); "
            "print('torch' in sys.modules, sorted(e))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False ") and "'numpy'" in out and "'torch'" not in out


def test_certificate_environment_says_which_stage_ran_elsewhere():
    here = {"torch": "2.14.1", "torch_git": "abc", "numpy": "2.4", "cpu_model": "AMD EPYC", "cpu_capability": "AVX512",
            "threads": 1, "deterministic": "strict", "device": "cpu", "python": "3.11.7"}
    elsewhere = {**here, "cpu_capability": "AVX2", "threads": 2, "python": "3.12.0"}
    block = determinism.certificate_environment(here, {"pretrain": elsewhere, "unlearn": dict(here)})
    assert block["verify"] == here and block["pretrain"] == elsewhere and block["unlearn"] == here
    assert block["differs_from_verify"] == {"pretrain": ["cpu_capability", "threads"]}  # python does not count
    old = determinism.certificate_environment(here, {"unlearn": None})  # a report from before environments
    assert old["differs_from_verify"] == {"unlearn": list(determinism.REPRODUCIBILITY_KEYS)}
