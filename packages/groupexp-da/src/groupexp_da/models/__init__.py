"""Model parts registered in mmdet3d's MODELS: the ignore-band anchor head, and GroupEXP-DA's
object descriptor, Gaussian groups, group-region attention, group head and detector."""
