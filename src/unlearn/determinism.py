"""Determinism: what a stage pins before it computes anything, and the environment record that says where the
bytes it wrote came from.

On one machine, the same params, code and environment give the same bytes only if the CPU thread count is
fixed: a matrix product or a convolution splits its sums across threads, and another split adds the same
floats in another order. So :func:`configure` sets the thread count to a fixed number (``UNLEARN_THREADS``,
default :data:`DEFAULT_THREADS`), never "as many cores as this machine has", and switches torch to deterministic
algorithms. Across machines the bytes may still differ: another CPU instruction set (``cpu_capability``: AVX2 vs
AVX512 kernels), another torch / MKL / oneDNN build, another GPU or CUDA version. :func:`environment` records
exactly those, for the reports and the certificate.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: The CPU thread count when neither the caller nor ``UNLEARN_THREADS`` sets one. One thread: a result that
#: does not depend on how many cores the machine has, and on the 2-core reference machine the demo's pretrain
#: is barely slower than with two (README, "Reproducibility").
DEFAULT_THREADS = 1

#: The environment variable that overrides :data:`DEFAULT_THREADS` (a positive integer).
THREADS_ENV = "UNLEARN_THREADS"

#: What the BLAS / OpenMP libraries loaded after :func:`configure` read for their thread count.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: cuBLAS needs a fixed workspace to be deterministic; it reads this before its first call.
CUBLAS_WORKSPACE = ":4096:8"


def resolve_threads(threads: int | None = None) -> int:
    """``threads`` if given, else ``$UNLEARN_THREADS`` (blank = unset), else :data:`DEFAULT_THREADS`.

    Anything but a positive integer is one ``ValueError`` naming where it came from.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads: expected a positive integer thread count, got {threads!r}")
        return threads
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_ENV}: expected a positive integer thread count, got {raw!r}")
    return int(raw)


def configure(seed: int, threads: int | None = None, *, torch_backend: bool = True) -> dict[str, Any]:
    """Pin everything a stage's result depends on besides its inputs; call it first in a stage's ``main``.

    Sets the CPU thread count (:func:`resolve_threads`) of every math library: torch's, and the BLAS / OpenMP
    pools NumPy and scikit-learn use (loaded ones through ``threadpoolctl``, later ones through
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``); seeds Python's and NumPy's RNGs. With
    ``torch_backend`` (every stage that computes with torch) also: torch's seed, deterministic algorithms
    (strict on CPU: an op without a deterministic implementation is an error; warn-only on CUDA, where e.g. the
    backward of adaptive average pooling has none and would stop every GPU run), cuDNN / oneDNN deterministic
    modes and ``CUBLAS_WORKSPACE_CONFIG``. ``torch_backend=False`` does not import torch (``prepare``: NumPy only).

    Returns:
        :func:`environment` after the settings.
    """
    n = resolve_threads(threads)
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:  # pragma: no cover - scikit-learn depends on it
        pass
    else:
        threadpool_limits(limits=n)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch_backend:
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.set_num_threads(n)
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        if hasattr(torch.backends.mkldnn, "deterministic"):
            torch.backends.mkldnn.deterministic = True
        torch.manual_seed(seed)
    return environment(torch_backend=torch_backend)


def deterministic_mode() -> str:
    """torch's deterministic-algorithms mode: ``strict``, ``warn_only`` (such ops only warn) or ``off``."""
    import torch

    if not torch.are_deterministic_algorithms_enabled():
        return "off"
    return "warn_only" if torch.is_deterministic_algorithms_warn_only_enabled() else "strict"


def environment(device: Any = None, *, torch_backend: bool = True) -> dict[str, Any]:
    """What the bytes of a result may depend on beyond its params and code, as a flat JSON-able dict.

    On one machine every value is the same run after run. ``device`` (a ``torch.device`` or its name) is the
    device the stage computed on (default: CUDA when present, else CPU). ``torch_backend=False``: no torch fields
    (and no torch import).
    """
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{platform.system()}-{platform.machine()}",
        "cpu_model": cpu_model(),
        "threads": blas_threads(),
    }
    if not torch_backend:
        return env
    import torch

    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    env.update({
        "torch": torch.__version__,
        "torch_git": torch.version.git_version,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "deterministic": deterministic_mode(),
        "device": device.type,
    })
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        env.update({"gpu": torch.cuda.get_device_name(index), "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version(),
                    "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG")})
    return env


def blas_threads() -> int | None:
    """The largest thread count of the BLAS / OpenMP pools loaded in this process (``None`` if none is)."""
    try:
        from threadpoolctl import threadpool_info
    except ModuleNotFoundError:  # pragma: no cover - scikit-learn depends on it
        return None
    counts = [int(pool["num_threads"]) for pool in threadpool_info()]
    return max(counts) if counts else None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


#: The environment fields the bytes of a result may depend on besides params, code and data: equal values and the
#: same params should give the same bytes. ``cpu_model`` is there because MKL and oneDNN pick kernels by CPU
#: vendor and instruction set; ``python`` and ``platform`` are recorded but do not enter the numerics.
REPRODUCIBILITY_KEYS = ("torch", "torch_git", "numpy", "cpu_model", "cpu_capability", "threads", "deterministic",
                        "device", "gpu", "cuda", "cudnn")


def differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """The :data:`REPRODUCIBILITY_KEYS` on which two environment records differ (all of them if one is missing)."""
    if not a or not b:
        return list(REPRODUCIBILITY_KEYS)
    return [k for k in REPRODUCIBILITY_KEYS if a.get(k) != b.get(k)]


def certificate_environment(verify: dict[str, Any], stages: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """A certificate's ``environment`` block: where each model was computed and where it was verified.

    ``verify``: :func:`environment` of the verify stage; ``stages``: the environment each model's stage recorded,
    by stage (e.g. ``{"pretrain": reports/pretrain.json["environment"], "unlearn":
    reports/unlearn/<method>.json["environment"]}``; ``None`` for a report written before environments were
    recorded). ``differs_from_verify`` is empty when re-running those stages where the certificate was issued
    should give the same bytes; otherwise it names, per stage, the fields that differ.
    """
    diffs = {stage: differences(env, verify) for stage, env in stages.items()}
    return {"verify": verify, **{stage: env for stage, env in stages.items()},
            "differs_from_verify": {stage: keys for stage, keys in diffs.items() if keys}}
