#!/usr/bin/env bash
# One device call for the synthetic grid: mmcv (built, or unpacked from a carried build), the
# build packed into $OUT for later calls, the CUDA speed benchmark, then grid rows until the
# time is up; results are packed into $OUT even when the grid is cut short.
# Usage (repo root, on the device): [SPEED=0] [MPS=1] [PACK=1] \
#     bash packages/groupexp-da/benchmarks/device_grid.sh TOTAL_SECONDS [gpu_grid.py options...]
# (the grid gets what is left of TOTAL_SECONDS). MPS=1 runs the grid's processes through one
# CUDA MPS server (started here, stopped at the end; the card's settings are untouched) when
# the daemon exists and a CUDA probe passes: without it the processes' many small kernels are
# time-sliced and do not overlap. PACK=1 writes the finished stage-1 runs (weights only) as
# $OUT/stage1_*.tar (PointPillars rows); carried back in $CARRY/stage1/, a later call resumes
# from them. SECOND rows run in the same scheduler: add S0,S1,SG,SO,S2,S4 to --rows (and
# --second-epochs N); check a job list on the CPU first with gpu_grid.py --dry-run.
set -uo pipefail
TOTAL_S=${1:?total seconds}
shift
PKG=packages/groupexp-da
CARRY=.carry/groupexp-da
OUT=${OUT:?}
WORK=/tmp/grid
T0=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/mmcv:/tmp/site:$PKG/src
mkdir -p $WORK
[ -d /tmp/site/mmdet3d ] || python3 -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target /tmp/site "$CARRY"/whl/*.whl || exit 1
# the grid's synthetic frames (numpy only) while mmcv builds
nice -n 10 python3 $PKG/benchmarks/gpu_grid.py --out $WORK --synth-only "$@" \
    > $WORK/synth.log 2>&1 &
SYNTH=$!
had_build=$(ls "$CARRY"/mmcv-build-*.tgz.part-* 2>/dev/null | wc -l)
bash $PKG/benchmarks/device_setup.sh "$CARRY" || exit 1
echo "mmcv ready after $(( $(date +%s) - T0 )) s"
if [ "$had_build" = 0 ]; then  # pack the build (package dir with _ext*.so) for later calls
    strip -g /tmp/mmcv/mmcv/_ext*.so 2>/dev/null || true
    tar -C /tmp/mmcv -czf - mmcv | split -b 15M - "$OUT"/mmcv-build-2.1.0-sm90-py312.tgz.part-
    ls -l "$OUT"
fi
if [ "${SPEED:-1}" != 0 ]; then  # SPEED=0 skips the speed benchmark (grid only)
    timeout 100 python3 $PKG/benchmarks/detector_speed.py --device cuda > "$OUT"/speed_cuda.json \
        2> $WORK/speed.log || tail -5 $WORK/speed.log
    cat "$OUT"/speed_cuda.json
fi
# stage-1 runs of an earlier call (kept where this machine is still warm, else carried)
for t in "$CARRY"/stage1/stage1_*.tar; do
    [ -e "$t" ] && tar -xf "$t" -C $WORK --skip-old-files && echo "unpacked $t"
done
MAXPAR=${PAR:-4}  # runs at once (PAR_MPS under MPS)
if [ "${MPS:-0}" = 1 ]; then
    export PATH=$PATH:/usr/local/nvidia/bin CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe \
        CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log
    mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
    if command -v nvidia-cuda-mps-control >/dev/null && { nvidia-cuda-mps-control -d || true; } &&
        timeout 60 python3 -c "import torch; assert torch.ones(8, device='cuda').sum() == 8"; then
        echo "MPS on"
        MAXPAR=${PAR_MPS:-8}
    else
        echo quit | nvidia-cuda-mps-control 2>/dev/null
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        echo "MPS off (no daemon or the probe failed)"
    fi
fi
wait $SYNTH || tail -5 $WORK/synth.log
GRID_S=$(( T0 + TOTAL_S - ${TAIL_S:-25} - $(date +%s) ))
echo "grid starts after $(( $(date +%s) - T0 )) s with ${GRID_S} s left"
timeout -k 5 "$GRID_S" python3 $PKG/benchmarks/gpu_grid.py --out $WORK "$@" --max-parallel $MAXPAR \
    > $WORK/grid.log 2>&1
echo "grid rc $? after $(( $(date +%s) - T0 )) s"
[ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ] && { echo quit | nvidia-cuda-mps-control; }
if [ "${PACK:-0}" = 1 ]; then
    python3 $PKG/benchmarks/gpu_grid.py --out $WORK --pack-stage1 "$OUT" "$@" ||
        echo "pack failed"
fi
# rebuilt from the run folders, so a grid cut short still gives its finished rows
python3 $PKG/benchmarks/gpu_grid.py --out $WORK --summarize "$@" > "$OUT"/grid_summary.json \
    2> $WORK/summary.log || tail -3 $WORK/summary.log
(cd $WORK && find . \( -name '*.json' -o -name '*.log' -o -name '*.png' \) \
    -not -path './data_*' -not -path './_pack/*' -size -2M | tar -czf "$OUT"/grid_results.tgz -T -)
tail -3 $WORK/grid.log
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(json.dumps({k: r.get(k) for k in ('rows', 'summary', 'partial')}))" "$OUT"/grid_summary.json
