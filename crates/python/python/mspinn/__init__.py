"""mspinn from Python: physics-informed neural networks for −(a(x/ε) u')' = f with oscillatory
coefficients, and the neural tangent kernel (NTK) of their residuals, computed by mspinn's Rust
engine — the same code, and the same numbers, as the ``mspinn`` command line.

The nouns are the CLI's::

    import mspinn
    p = mspinn.Problem.for_ntk(eps=1/32)                # or Problem.preset / from_toml / Problem(...)
    net = mspinn.Network([50], init="normal", seed=0)   # Fig. 2a's network
    K = mspinn.ntk(net, p, nc=256)                      # K.k_uu, K.k_uu_fro, K.k_uu_eig_top, ...
    x, u, du, u_bar = mspinn.solve(mspinn.Problem.preset("twoscale-darcy"))
    run = mspinn.train(mspinn.Problem.preset("twoscale-darcy"), "500@1e-3", nc=256)
    u, du, d2u = run.network.predict(x)

Arrays come back as float64 numpy arrays (moved from Rust without a copy); arrays going in are
read without a copy when they are contiguous float64. Long calls release the GIL, stop cleanly
on Ctrl-C (``KeyboardInterrupt``) and show a progress bar unless ``progress=False``. Bad input
raises ``ValueError`` naming the argument or field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._core import Network, Problem
from ._progress import ProgressArg, Reporter

__version__: str = _core.__version__
#: Whether this build has candle's CUDA backend (``device="cuda"``).
cuda_built: bool = _core.cuda_built

__all__ = [
    "Problem",
    "Network",
    "Solution",
    "solve",
    "NtkResult",
    "ntk",
    "History",
    "ErrorHistory",
    "TrainResult",
    "train",
    "cuda_built",
]


class Solution(NamedTuple):
    """The reference solution on an equispaced grid (both ends): ``x``, ``u``, ``du`` = u' and
    the homogenised ``u_bar`` (None where the problem has none)."""

    x: np.ndarray
    u: np.ndarray
    du: np.ndarray
    u_bar: Optional[np.ndarray]


def solve(problem: Problem, points: int = 1000) -> Solution:
    """The reference solution of ``mspinn solve``: exact where the problem knows u in closed
    form, else adaptive Gauss–Legendre quadrature of the Darcy problem (2e-11 relative at
    ε = 1/1000), and ū from the harmonic mean ā of a over one period."""
    return Solution(*_core.solve(problem, points))


@dataclass(frozen=True)
class NtkResult:
    """The NTK K = J Jᵀ D of the PINN residuals (appendix A) and what ``mspinn ntk`` reports.

    ``k`` is the full N × N kernel (N = N_c + N_b, PDE rows first) and ``k_uu``, ``k_ub``,
    ``k_bu``, ``k_bb`` its blocks (``k_uu`` its own array, the others views of ``k``); all are
    None when the Gram method was used (N_c > N_p), which never forms an N × N matrix.
    ``report`` is the record ``mspinn ntk --json`` prints, key for key.
    """

    k: Optional[np.ndarray]
    k_uu: Optional[np.ndarray]
    k_ub: Optional[np.ndarray]
    k_bu: Optional[np.ndarray]
    k_bb: Optional[np.ndarray]
    report: Dict[str, Any]
    eps: Optional[float]
    nc: int
    nb: int
    n_params: int
    #: ‖K_uu‖_F, ‖K_bb‖_F, ‖K‖_F.
    k_uu_fro: float
    k_bb_fro: float
    k_fro: float
    #: The ``top_k`` largest eigenvalues of K_uu and of K, descending.
    k_uu_eig_top: np.ndarray
    k_eig_top: np.ndarray
    k_uu_trace: float
    k_uu_max_entry: float
    k_uu_rank: int
    k_uu_cond_nonzero: float
    cond_nonzero: float
    scaling: str
    method: str
    dtype: str
    engine: str
    seconds: float
    #: Every eigenvalue of K_uu and of K, descending (only with ``full_spectrum=True``).
    k_uu_spectrum: Optional[np.ndarray] = None
    k_spectrum: Optional[np.ndarray] = None


def ntk(
    network: Network,
    problem: Problem,
    *,
    nc: int = 256,
    points: str = "endpoints",
    seed: Optional[int] = None,
    lam: float = 1.0,
    scaling: str = "appendix",
    method: str = "auto",
    top_k: int = 3,
    full_spectrum: bool = False,
    chunk_mb: Optional[int] = None,
    engine: Optional[str] = None,
    engine_threads: int = 1,
    engine_tile: int = 128,
    dtype: Optional[str] = None,
    device: Optional[str] = None,
) -> NtkResult:
    """The NTK of ``network``'s residuals on ``problem`` at ``nc`` collocation points, as one
    record of ``mspinn ntk``: K_uu equals its ``--save-matrix`` file bit for bit for the same
    network, problem and options.

    ``points``: ``"endpoints"`` (equispaced, both ends), ``"midpoints"`` or ``"random"`` (drawn
    from ``seed``, default the network's seed, as the CLI does). ``lam``: the boundary weight λ.
    ``scaling``: ``"appendix"`` (K = J Jᵀ D with D = diag(1/N_c, …, λ/N_b, …)) or
    ``"unscaled"`` (section 4.1's J_u J_uᵀ). ``method``: ``"auto"`` (dense if N_c ≤ N_p, else
    the N_p × N_p Gram matrix Jᵀ D J), ``"dense"`` or ``"gram"``. ``dtype`` / ``device``
    convert the network first (default: its own). ``engine``: ``"cpu"`` or ``"candle"``
    (default: the device's). The GIL is released while it computes; Ctrl-C raises
    ``KeyboardInterrupt`` once the running assembly returns.
    """
    r = _core.ntk(
        network,
        problem,
        nc=nc,
        points=points,
        seed=seed,
        lam=lam,
        scaling=scaling,
        method=method,
        top_k=top_k,
        full_spectrum=full_spectrum,
        chunk_mb=chunk_mb,
        engine=engine,
        engine_threads=engine_threads,
        engine_tile=engine_tile,
        dtype=dtype,
        device=device,
    )
    rep: Dict[str, Any] = json.loads(r["report"])
    k, k_uu, n = r["k"], r["k_uu"], r["nc"]
    arr = lambda key: None if rep.get(key) is None else np.asarray(rep[key], dtype=np.float64)  # noqa: E731
    return NtkResult(
        k=k,
        k_uu=k_uu,
        k_ub=None if k is None else k[:n, n:],
        k_bu=None if k is None else k[n:, :n],
        k_bb=None if k is None else k[n:, n:],
        report=rep,
        eps=rep["eps"],
        nc=rep["nc"],
        nb=rep["nb"],
        n_params=rep["np"],
        k_uu_fro=rep["k_uu_fro"],
        k_bb_fro=rep["k_bb_fro"],
        k_fro=rep["k_fro"],
        k_uu_eig_top=arr("k_uu_eig_top"),
        k_eig_top=arr("k_eig_top"),
        k_uu_trace=rep["k_uu_trace"],
        k_uu_max_entry=rep["k_uu_max_entry"],
        k_uu_rank=rep["k_uu_rank"],
        k_uu_cond_nonzero=_float(rep["k_uu_cond_nonzero"]),
        cond_nonzero=_float(rep["cond_nonzero"]),
        scaling=rep["scaling"],
        method=rep["method"],
        dtype=rep["dtype"],
        engine=rep["engine"],
        seconds=rep["seconds"],
        k_uu_spectrum=arr("k_uu_spectrum"),
        k_spectrum=arr("k_spectrum"),
    )


def _float(v: Any) -> float:
    """JSON has no inf or NaN: serde writes them as null."""
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class History:
    """The logged rows of a training run (the columns of the CLI's metrics.csv): every
    ``log_every`` iterations and at each phase's end. ``lr`` holds μ for lm/gn phases."""

    iteration: np.ndarray
    phase: np.ndarray
    optimizer: List[str]
    lr: np.ndarray
    loss: np.ndarray
    loss_pde: np.ndarray
    loss_bc: np.ndarray
    seconds: np.ndarray


@dataclass(frozen=True)
class ErrorHistory:
    """The relative errors against the reference on the 1000-point metrics grid at every logged
    iteration (the CLI's history.csv); empty for a problem without a reference."""

    iteration: np.ndarray
    seconds: np.ndarray
    rel_linf: np.ndarray
    rel_l2: np.ndarray


@dataclass(frozen=True)
class TrainResult:
    """A trained network, its history and the paper's metrics (result.json's, for one trial).

    ``metrics`` holds ``rel_l2``, ``rel_linf``, ``max_error_mean_network``, ``mean_variance``,
    ``rel_l2_mean_network`` and, where there is a homogenised ū, ``max_error_vs_homogenized`` and
    ``rel_l2_mean_network_vs_homogenized`` (lists have one entry: this trial); None without a
    reference solution. ``final_loss`` is (total, pde, bc).
    """

    network: Network
    history: History
    errors: ErrorHistory
    metrics: Optional[Dict[str, Any]]
    final_loss: Tuple[float, float, float]
    iterations: int
    lbfgs_iterations: int
    seconds: float
    nc: int


def train(
    problem: Problem,
    schedule: str,
    *,
    network: Optional[Network] = None,
    widths: Optional[Sequence[int]] = None,
    activation: Optional[str] = None,
    init: Optional[str] = None,
    seed: Optional[int] = None,
    nc: int = 1024,
    points: str = "endpoints",
    lam: float = 2.0,
    dtype: Optional[str] = None,
    device: Optional[str] = None,
    engine: Optional[str] = None,
    engine_threads: int = 1,
    engine_tile: int = 128,
    log_every: int = 100,
    lbfgs_memory: int = 50,
    lm_space: str = "auto",
    lm_damping: str = "marquardt",
    lm_tau: Optional[float] = None,
    progress: ProgressArg = True,
) -> TrainResult:
    """Trains a PINN on ``problem`` with ``schedule`` in the CLI's syntax — ``ITERS@LR`` (Adam),
    ``lbfgs:MAXITER``, ``lm:ITERS`` (Levenberg–Marquardt), ``gn:ITERS`` (Gauss–Newton), comma
    separated, e.g. ``"2000@1e-3,lm:500"`` — as one trial of ``mspinn train`` with the same
    options: for the same seed the history and the network equal the CLI's.

    The network is a copy of ``network`` (``dtype`` / ``device`` convert it), or a fresh one of
    ``widths`` (default the paper's 4 × 40), ``activation`` (tanh), ``init`` (glorot-normal) and
    ``seed`` (0). ``nc`` collocation points laid out as ``points``; ``lam`` the boundary weight
    λ of eq. (7) (2 is section 4.2's ½(u(−π)² + u(π)²)). ``progress``: True (a bar: tqdm's if
    installed, else text; both behave in Jupyter), False, or a callable(done, total, message).

    The GIL is released while it trains. Ctrl-C stops it after the current step (or LM
    iteration; an L-BFGS phase runs to its end) and raises ``KeyboardInterrupt``.
    """
    with Reporter(progress, "train") as rep:
        r = _core.train(
            problem,
            schedule,
            network=network,
            widths=None if widths is None else list(widths),
            activation=activation,
            init=init,
            seed=seed,
            nc=nc,
            points=points,
            lam=lam,
            dtype=dtype,
            device=device,
            engine=engine,
            engine_threads=engine_threads,
            engine_tile=engine_tile,
            log_every=log_every,
            lbfgs_memory=lbfgs_memory,
            lm_space=lm_space,
            lm_damping=lm_damping,
            lm_tau=lm_tau,
            progress=rep.callback,
        )
    summary = None if r["summary"] is None else json.loads(r["summary"])
    return TrainResult(
        network=r["network"],
        history=History(**r["rows"]),
        errors=ErrorHistory(**r["errors"]),
        metrics=summary,
        final_loss=tuple(r["final_loss"]),  # type: ignore[arg-type]
        iterations=r["iterations"],
        lbfgs_iterations=r["lbfgs_iterations"],
        seconds=r["seconds"],
        nc=r["nc"],
    )
