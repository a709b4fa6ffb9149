"""2D panoptic masks: Mask2Former (transformers, local folders only) and the COCO → target-class map by label name."""
