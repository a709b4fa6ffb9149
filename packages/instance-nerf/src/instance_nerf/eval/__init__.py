"""eval seam of instance_nerf."""
