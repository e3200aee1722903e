"""Type stubs of the native module ``mspinn._core`` (Rust, PyO3). The public API is ``mspinn``:
``Problem`` and ``Network`` are these classes; ``solve``, ``ntk`` and ``train`` wrap these
functions' results in typed dataclasses."""

from os import PathLike
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
cuda_built: bool

_Number = Union[float, int, str]
_Path = Union[str, "PathLike[str]"]
_Points = Union[npt.ArrayLike, Sequence[float]]

class Problem:
    """A boundary value problem −(a(x/ε) u')' = f on (a, b) with Dirichlet data (``darcy``), or
    the paper's ``poisson`` (−u'' = f) and ``regression`` (u = f) baselines. Numbers may be
    strings like ``"1/32"``, ``"pi"``, ``"2*pi"``; bad fields raise ValueError naming them."""

    def __init__(
        self,
        kind: str,
        forcing: str,
        *,
        eps: Optional[_Number] = None,
        coefficient: Optional[str] = None,
        period: Optional[_Number] = None,
        domain: Optional[Tuple[_Number, _Number]] = None,
        boundary: Optional[Tuple[_Number, _Number]] = None,
        exact: Optional[str] = None,
    ) -> None: ...
    @staticmethod
    def preset(name: str, eps: Optional[_Number] = None) -> Problem:
        """``fp-poisson``, ``twoscale-regression``, ``twoscale-poisson``, ``twoscale-darcy``
        (ε default 1/32) or ``ntk-4.1`` (ε default 1/10)."""
    @staticmethod
    def from_toml(path: _Path, eps: Optional[_Number] = None) -> Problem:
        """The ``[problem]`` table of a run file (``mspinn --config``'s format)."""
    @staticmethod
    def for_ntk(eps: _Number, coef: str = "paper-4.1", operator: str = "darcy") -> Problem:
        """The problem ``mspinn ntk --problem OPERATOR --coef COEF --eps EPS`` measures."""
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def eps(self) -> Optional[float]: ...
    @property
    def domain(self) -> Tuple[float, float]: ...
    @property
    def boundary(self) -> Tuple[float, float]: ...
    @property
    def homogenized_coefficient(self) -> Optional[float]: ...
    def collocation(self, n: int, points: str = "endpoints", seed: int = 0) -> npt.NDArray[np.float64]:
        """The ``n`` collocation points of ``mspinn train`` / ``ntk`` (endpoints, midpoints, random)."""

class Network:
    """A tanh/sin/softplus MLP with scalar input and output, seeded exactly as the CLI draws it."""

    def __init__(
        self,
        widths: Sequence[int],
        *,
        activation: str = "tanh",
        init: str = "glorot-normal",
        seed: int = 0,
        dtype: str = "f64",
        device: str = "cpu",
    ) -> None: ...
    @staticmethod
    def load(
        path: _Path, *, dtype: Optional[str] = None, device: str = "cpu", activation: Optional[str] = None
    ) -> Network:
        """A safetensors weights file written by mspinn (``trial-000/weights.safetensors``)."""
    def save(self, path: _Path) -> None:
        """Writes the safetensors file ``mspinn ntk --weights`` reads."""
    def to(self, *, dtype: Optional[str] = None, device: Optional[str] = None) -> Network: ...
    def copy(self) -> Network: ...
    @property
    def widths(self) -> list[int]: ...
    @property
    def activation(self) -> str: ...
    @property
    def init(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def num_params(self) -> int: ...
    def parameters(self) -> npt.NDArray[np.float64]:
        """θ, layer by layer (weight row-major, then bias): the NTK's Jacobian column order."""
    def set_parameters(self, theta: _Points) -> None: ...
    def predict(
        self, x: _Points
    ) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(u, u', u'') at the points ``x``, from one Taylor-mode forward pass."""
    def __call__(self, x: _Points) -> npt.NDArray[np.float64]:
        """u at the points ``x``."""

def solve(
    problem: Problem, points: int = 1000
) -> Tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], Optional[npt.NDArray[np.float64]]
]: ...
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
) -> Dict[str, Any]: ...
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
    progress: Optional[Callable[[int, int, str], object]] = None,
) -> Dict[str, Any]: ...
