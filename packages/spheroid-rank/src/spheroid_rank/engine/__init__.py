"""engine seam of spheroid-rank."""
