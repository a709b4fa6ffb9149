"""data seam of spheroid-rank."""
