"""Data side: point/info readers and atomic writers (``io``), the synthetic LiDAR domains
(``synth``), alignment transforms (``transforms``, mmdet3d TRANSFORMS) and ``LidarCarDataset``."""
