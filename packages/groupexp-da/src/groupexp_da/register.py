"""Import this module (``custom_imports=dict(imports=['groupexp_da.register'])``) to register
the package's transforms, datasets, heads and metrics in mmdet3d's registries.

It also allow-lists the few non-tensor types found in mmengine checkpoints so that
they load with ``torch.load(..., weights_only=True)`` (torch's default)."""

import codecs

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from groupexp_da.data import datasets, transforms  # noqa: F401
from groupexp_da.eval import metric  # noqa: F401
from groupexp_da.models import heads  # noqa: F401


def checkpoint_safe_globals() -> list:
    """Types besides tensors that mmengine writes into a checkpoint."""
    dtypes = {type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")}
    # ``getattr``: mmengine's HistoryBuffer pickles its bound statistics methods
    # (``statistics_methods['min'] = getattr(buffer, 'min')``) inside ``message_hub``.
    return [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar, codecs.encode, getattr, *dtypes]


torch.serialization.add_safe_globals(checkpoint_safe_globals())
