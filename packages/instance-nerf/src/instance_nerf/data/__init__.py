"""data seam of instance_nerf."""
