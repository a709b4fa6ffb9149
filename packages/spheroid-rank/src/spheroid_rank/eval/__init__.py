"""eval seam of spheroid-rank."""
