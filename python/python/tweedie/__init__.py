"""tweedie: bias-free denoisers as generative models, from Python.

The Rust library through PyO3: open a run folder (trained by ``tweedie train`` or imported
with ``tweedie import``), denoise numpy arrays, sample from the network's prior with the CLI's
samplers and seeds, take exact Jacobian products, the dense Jacobian, its top eigenpairs and
its trace, use the empirical-optimal (memorizing) denoiser, and read the JSON records the tool
writes. Computations release the GIL; errors are ``TweedieError`` subclasses carrying the
library's one-line messages.
"""

from ._tweedie import (
    InputError,
    Run,
    RunError,
    TweedieError,
    __version__,
    empirical_optimal_denoise,
    noisy,
    read_record,
    train,
)

__all__ = [
    "Run",
    "TweedieError",
    "InputError",
    "RunError",
    "empirical_optimal_denoise",
    "noisy",
    "read_record",
    "train",
    "__version__",
]
