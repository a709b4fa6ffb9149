"""Import this module (``custom_imports=dict(imports=['groupexp_da.register'])``) to register
the package's components in mmdet3d's registries: transforms (alignment, ``SetDomain``), the
dataset, ``DomainBalancedBatchSampler``, the ignore-band and GroupEXP heads, the object
descriptor, the group attention, ``GroupExpVoxelNet``, the group hooks and ``CarAPMetric``.

It also allow-lists the few non-tensor types found in mmengine checkpoints so that
they load with ``torch.load(..., weights_only=True)`` (torch's default); the list
lives in :mod:`groupexp_da.engine.checkpoint`."""

from groupexp_da.data import datasets, samplers, transforms  # noqa: F401
from groupexp_da.engine import hooks  # noqa: F401
from groupexp_da.engine.checkpoint import allow_checkpoint_types
from groupexp_da.eval import metric  # noqa: F401
from groupexp_da.models import (  # noqa: F401
    descriptor,
    detector,
    group_attention,
    group_head,
    heads,
)

allow_checkpoint_types()
