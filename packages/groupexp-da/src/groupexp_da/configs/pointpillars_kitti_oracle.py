# Oracle: train and evaluate on KITTI (the upper bound for * -> KITTI adaptation).
_base_ = ["./_base_/pointpillars_cross_domain.py"]
