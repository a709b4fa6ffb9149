"""Import this module (``custom_imports=dict(imports=['groupexp_da.register'])``) to register
the package's transforms, datasets, heads, metrics and hooks in mmdet3d's registries."""

from groupexp_da.data import datasets, transforms  # noqa: F401
from groupexp_da.eval import metric  # noqa: F401
from groupexp_da.models import heads  # noqa: F401
