"""engine seam of instance_nerf."""
