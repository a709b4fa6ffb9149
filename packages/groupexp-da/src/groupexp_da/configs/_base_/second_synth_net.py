# The synthetic PointPillars base with its model replaced by the shared SECOND model; the
# synthetic grid is set one level up (second_synth.py), because a config cannot override keys of
# a `{{_base_.x}}` value in the file that substitutes it.
_base_ = ["./pointpillars_synth_cpu.py", "./models/second.py"]
model = {{_base_.second_model}}
