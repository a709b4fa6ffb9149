"""Networks: timm backbones (``spheroid_cnn_small`` registered with timm), the SSL methods of
``METHODS`` and the temporal models of ``TEMPORAL_MODELS``."""
