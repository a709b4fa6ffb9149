"""models seam of spheroid-rank."""
