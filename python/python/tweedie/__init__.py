"""tweedie: bias-free denoisers as generative models, from Python.

The Rust library through PyO3: open a run folder (trained by ``tweedie train`` or imported
with ``tweedie import``), denoise numpy arrays, sample from the network's prior with the CLI's
samplers and seeds, take exact Jacobian products, the dense Jacobian, its top eigenpairs and
its trace, use the empirical-optimal (memorizing) denoiser, and read the JSON records the tool
writes. Computations release the GIL; errors are ``TweedieError`` subclasses carrying the
library's one-line messages.
"""

import numpy as _np

from ._tweedie import (
    InputError,
    Run,
    RunError,
    TweedieError,
    __version__,
    empirical_optimal_denoise,
    estimate_noise,
    noisy,
    train,
    wiener_denoise,
)
from ._tweedie import generalization as _generalization
from ._tweedie import optimality as _optimality
from ._tweedie import read_record as _read_json


def _arrays(value):
    """Lists of numbers (and nested lists of them, rectangular) become numpy arrays."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_arrays(v) for v in value]
        if items and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return _np.asarray(items, dtype=_np.float64)
        if items and all(isinstance(v, _np.ndarray) for v in items) and len({v.shape for v in items}) == 1:
            return _np.stack(items)
        return items
    return value


def generalization(out, data=None, **settings):
    """Run the generalization study in the folder ``out`` as ``tweedie generalization`` does —
    pairs of networks on disjoint training sets for each N in ``sizes``, trained to
    convergence by default, paired samples from the same noise, the memorization and
    generalization measures with 95% intervals, and the verdict — and return ``study.json`` as
    :func:`read_record` does. ``resume=True`` continues the study in ``out`` with its own
    settings; Ctrl-C stops training at a checkpoint and raises KeyboardInterrupt. The report
    page (``report.html``) and figures are written beside it."""
    return _arrays(_generalization(out, data, **settings))


def optimality(out, family=None, **settings):
    """Run the optimality study in the folder ``out`` as ``tweedie optimality`` does — networks
    trained on a family whose optimal denoiser is known ("gaussian", "calpha", "disks", or
    "shuffled": a data set and its pixel-shuffled copy), measured against that optimum — and
    return ``optimality.json`` as :func:`read_record` does. ``quick=True`` runs the command's
    smoke-test settings; ``resume=True`` continues the study in ``out``."""
    return _arrays(_optimality(out, family, **settings))


def read_record(path):
    """A JSON record tweedie wrote (``study.json``, ``optimality.json``, ``jacobian.json``,
    ``eval.json``, ``config.json``, …) as dicts, lists and strings, with every list of numbers
    as a float64 numpy array (rectangular nested lists as one array) a notebook can plot."""
    return _arrays(_read_json(path))


__all__ = [
    "Run",
    "TweedieError",
    "InputError",
    "RunError",
    "empirical_optimal_denoise",
    "estimate_noise",
    "generalization",
    "noisy",
    "optimality",
    "read_record",
    "train",
    "wiener_denoise",
    "__version__",
]
