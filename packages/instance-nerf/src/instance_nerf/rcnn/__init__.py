"""NeRF-RPN/NeRF-RCNN in plain torch: a 3D VGG-FPN, the anchor-free FCOS proposal head, 3D RoIAlign, box and mask heads."""
