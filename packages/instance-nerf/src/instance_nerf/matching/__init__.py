"""3D → 2D: projecting 3D instance masks into the training views and matching 2D panoptic segments to them."""
