#!/usr/bin/env bash
# Prepare a bare GPU machine (torch preinstalled, no network) for the GPU benchmarks:
# carried wheels -> /tmp/site, mmcv 2.1.0 built in place with CUDA ops -> /tmp/mmcv (or unpacked
# from a carried earlier build, .carry/groupexp-da/mmcv-build-*.tgz.part-*).
# Usage (repo root): bash packages/groupexp-da/benchmarks/device_setup.sh .carry/groupexp-da
# then: export PYTHONPATH=/tmp/mmcv:/tmp/site:packages/groupexp-da/src
set -euo pipefail
CARRY=${1:-.carry/groupexp-da}
[ -d /tmp/site/mmdet3d ] || python3 -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target /tmp/site "$CARRY"/whl/*.whl
# a build packed by benchmarks/device_grid.sh (carried, never committed) saves the ~5 min build
if ls "$CARRY"/mmcv-build-*.tgz.part-* >/dev/null 2>&1; then
    [ -e /tmp/mmcv/mmcv ] || { mkdir -p /tmp/mmcv && cat "$CARRY"/mmcv-build-*.tgz.part-* |
        tar xzf - -C /tmp/mmcv; }
elif ! python3 -c "import sys, torch; sys.path[:0] = ['/tmp/mmcv', '/tmp/site']; import mmcv._ext" 2>/dev/null; then
    mkdir -p /tmp/mmcv && tar xzf "$CARRY"/mmcv-2.1.0-src.tgz -C /tmp/mmcv
    (cd /tmp/mmcv && PYTHONPATH=/tmp/site MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 \
        MAX_JOBS=16 python3 setup.py build_ext --inplace > /tmp/mmcv_build.log 2>&1) ||
        { tail -30 /tmp/mmcv_build.log; exit 1; }
fi
PYTHONPATH=/tmp/mmcv:/tmp/site python3 -c "import mmcv, mmdet3d; from mmcv.ops import Voxelization, nms_rotated; print('mmcv', mmcv.__version__, 'mmdet3d', mmdet3d.__version__)"
