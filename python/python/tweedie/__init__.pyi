"""Type stubs of tweedie (the PyO3 extension ``tweedie._tweedie``)."""

from os import PathLike
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class TweedieError(Exception):
    """Any error of tweedie."""

class InputError(TweedieError):
    """An array, argument or file tweedie cannot use (dtype, shape, NaN, absurd value)."""

class RunError(TweedieError):
    """A run folder that cannot be opened (not a run, unfinished, damaged)."""

F32 = npt.NDArray[np.float32]

class Run:
    """A run folder: a network trained by tweedie or imported from PyTorch."""

    def __init__(self, path: Union[str, PathLike[str]], weights: str = "ema") -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]:
        """config.json: the training record, or an imported network's source."""
    @property
    def imported(self) -> bool: ...
    @property
    def image_channels(self) -> int: ...
    @property
    def image_shape(self) -> Optional[Tuple[int, int, int]]:
        """(C, H, W) it was trained on; None for an imported network."""
    def denoise(self, y: F32, sigma: Optional[float] = None) -> F32:
        """x̂ = f(y), same shape as y ([n, c, h, w]; [n, h, w] or [h, w] gray; [h, w, c])."""
    def evaluate(
        self,
        sigmas: Sequence[float] = (5 / 255, 15 / 255, 25 / 255, 50 / 255, 100 / 255),
        count: int = 256,
        data: Optional[str] = None,
        optimum: bool = False,
        seed: int = 0,
    ) -> Dict[str, Any]:
        """PSNR/MSE vs σ on training and held-out images, as ``tweedie eval`` (eval.json)."""
    def sample(
        self,
        count: int = 16,
        seed: int = 0,
        size: Union[int, Tuple[int, int], None] = None,
        sampler: str = "ascent",
        steps: int = 100,
        h0: float = 0.01,
        beta: float = 0.1,
        sigma_final: float = 0.01,
        max_steps: int = 3000,
        batch: int = 64,
    ) -> F32:
        """[count, c, h, w] samples; the same seed gives ``tweedie sample``'s."""
    def restore(
        self,
        x: F32,
        task: str,
        box: Optional[Tuple[int, int, int, int]] = None,
        mask: Optional[npt.NDArray[np.bool_]] = None,
        fraction: float = 0.5,
        factor: int = 4,
        cutoff: float = 4.0,
        seed: int = 0,
        h0: float = 0.01,
        beta: float = 0.01,
        sigma_final: float = 0.01,
        max_steps: int = 3000,
    ) -> Tuple[F32, F32]:
        """(restorations, Mᵀc) of the clean images x measured by the task's operator:
        "inpaint" (box or mask), "random-pixels", "superres", "cs", "deblur"."""
    def jvp(self, y: F32, v: F32) -> F32:
        """J·v at the image y for each v."""
    def vjp(self, y: F32, u: F32) -> F32:
        """Jᵀ·u at the image y for each u."""
    def jacobian(self, y: F32) -> npt.NDArray[np.float32]:
        """The dense [D, D] Jacobian at the image y (D = c·h·w ≤ 16 384)."""
    def eigenpairs(
        self, y: F32, k: int = 16, iterations: Optional[int] = None, seed: int = 0
    ) -> Tuple[npt.NDArray[np.float64], F32]:
        """Top-k eigenvalues of (J + Jᵀ)/2 at y and eigenvectors [k, c, h, w] (Lanczos)."""
    def trace(self, y: F32, probes: int = 64, seed: int = 0) -> Tuple[float, float]:
        """Hutchinson's tr J at y: (mean, standard error)."""

def empirical_optimal_denoise(train: F32, y: F32, sigma: float) -> F32:
    """The posterior mean over the training images at noise level sigma (exact)."""

def wiener_denoise(family: Union[str, PathLike[str]], y: F32, sigma: float) -> F32:
    """The exact Wiener filter of a Gaussian-field family (its .npy with the .json beside it)."""

def estimate_noise(y: F32) -> npt.NDArray[np.float64]:
    """One σ per image, from the image alone (median absolute finest diagonal Haar coefficient / 0.6745)."""

def noisy(x: F32, sigma: float, seed: int) -> F32:
    """x plus noise of level sigma drawn as tweedie's commands draw it at (seed, sigma)."""

def train(
    out: Union[str, PathLike[str]],
    data: str,
    arch: str = "bf-unet",
    channels: int = 16,
    blocks: int = 2,
    layers: int = 20,
    steps: Union[int, str, None] = None,
    batch: int = 32,
    seed: int = 0,
    gray: bool = False,
    size: Optional[int] = None,
    train_size: Optional[int] = None,
    resume: bool = False,
    progress: Optional[Callable[[Optional[int], int, str], None]] = None,
) -> Run:
    """Train into the run folder `out` as `tweedie train` does (steps: N, "auto", "auto:CAP").
    Ctrl-C checkpoints the run and raises KeyboardInterrupt; resume=True continues it."""

def generalization(
    out: Union[str, PathLike[str]],
    data: Optional[str] = None,
    sizes: Sequence[int] = (1, 10, 100, 1000),
    pairs: int = 3,
    samples: int = 64,
    steps: Union[int, str, None] = None,
    snapshots: int = 8,
    channels: int = 16,
    blocks: int = 2,
    batch: int = 32,
    seed: int = 0,
    gray: bool = False,
    size: Optional[int] = None,
    eval_count: int = 256,
    sampler: str = "ascent",
    euler_steps: int = 100,
    h0: float = 0.01,
    beta: float = 0.1,
    sigma_final: float = 0.01,
    max_steps: int = 3000,
    jobs: Optional[int] = None,
    resume: bool = False,
    progress: Optional[Callable[[Optional[int], int, str], None]] = None,
) -> Dict[str, Any]:
    """The generalization study in `out`, as `tweedie generalization` runs it (steps "auto" by
    default); returns study.json as read_record does. resume=True continues it."""

def optimality(
    out: Union[str, PathLike[str]],
    family: Optional[str] = None,
    alphas: Sequence[float] = (1.0, 2.0, 3.0, 5.0),
    gamma: float = 2.0,
    data: str = "fashion-mnist",
    size: int = 32,
    train_images: int = 10000,
    channels: int = 16,
    blocks: int = 2,
    steps: Union[int, str, None] = None,
    quick: bool = False,
    seed: int = 0,
    resume: bool = False,
    progress: Optional[Callable[[Optional[int], int, str], None]] = None,
) -> Dict[str, Any]:
    """The optimality study in `out`, as `tweedie optimality` runs it; returns optimality.json
    as read_record does. quick=True: the smoke-test settings; resume=True continues it."""

def read_record(path: Union[str, PathLike[str]]) -> Any:
    """A JSON record tweedie wrote, as dicts and lists, lists of numbers as numpy arrays."""
