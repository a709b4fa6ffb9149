"""models seam of instance_nerf."""
