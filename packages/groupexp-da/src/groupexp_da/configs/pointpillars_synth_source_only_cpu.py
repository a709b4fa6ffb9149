# Source-only: train on the synthetic source domain, evaluate on the target domain.
_base_ = ["./_base_/pointpillars_synth_cpu.py"]
