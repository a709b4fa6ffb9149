"""Inputs: plate geometry, the metadata table, image/CSV readers, atomic writers, the torch
dataset, bright-field augmentations and the synthetic plate generator."""
