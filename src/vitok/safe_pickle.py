"""A restricted unpickler for the numpy-array pickles that carry some metric weights.

Only numpy's array-reconstruction entry points are admitted; any other global (a function, a
class with side effects) raises ``pickle.UnpicklingError``. Use it instead of ``pickle.load``.
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/dtype reconstruction globals."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        if module.endswith("multiarray"):  # numpy 2 moved numpy.core to numpy._core
            import numpy

            core = getattr(numpy, "_core", None) or importlib.import_module("numpy.core")
            return getattr(core.multiarray, name)
        return super().find_class(module, name)


def load_numpy_pickle(data: bytes) -> Any:
    """Unpickle ``data`` admitting numpy arrays, dtypes and plain containers only."""
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()
