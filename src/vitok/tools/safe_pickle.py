"""A restricted unpickler for the numpy-array pickles that carry some metric weights.

Only numpy's array-reconstruction entry points are admitted; any other global (a function, a
class with side effects) raises ``pickle.UnpicklingError``. Use it instead of ``pickle.load``.
"""

from __future__ import annotations

import collections
import importlib
import io
import pickle
import zipfile
from typing import Any

import torch

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


# ---------------------------------------------------------------------- TorchScript archives
_TORCH_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "BoolStorage": torch.bool, "ByteStorage": torch.uint8,
}


class _ScriptObject:
    """Stand-in for a scripted module: keeps its attribute dict, runs no code."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {})


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class TorchScriptTensorUnpickler(pickle.Unpickler):
    """Reads the tensors of a TorchScript archive's ``data.pkl`` without loading any code:
    scripted classes become inert attribute holders, tensors are rebuilt from raw storages."""

    def __init__(self, data: bytes, read_storage: Any) -> None:
        super().__init__(io.BytesIO(data))
        self.read_storage = read_storage

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(_TORCH_DTYPES[name])
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a TorchScript archive")

    def persistent_load(self, pid: Any) -> Any:
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        raw = bytearray(self.read_storage(key))
        tensor = torch.frombuffer(raw, dtype=storage_type.dtype) if raw else torch.empty(0, dtype=storage_type.dtype)
        return torch.storage.TypedStorage(wrap_storage=tensor.untyped_storage(), dtype=storage_type.dtype,
                                          _internal=True)


def load_torchscript_tensors(archive: bytes) -> dict[str, torch.Tensor]:
    """All tensors of a TorchScript ``.pt`` archive by attribute path (e.g. ``net.layers.conv.weight``)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl") and n.count("/") == 1)
        root = pkl.rsplit("/", 1)[0]
        obj = TorchScriptTensorUnpickler(z.read(pkl), lambda key: z.read(f"{root}/data/{key}")).load()
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in vars(node).items():
            if isinstance(value, torch.Tensor):
                tensors[prefix + key] = value.clone()
            elif isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{key}.")

    walk(obj, "")
    return tensors
