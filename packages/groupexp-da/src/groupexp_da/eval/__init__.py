"""groupexp_da.eval."""
