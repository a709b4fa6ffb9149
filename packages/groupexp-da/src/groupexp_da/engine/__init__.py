"""groupexp_da.engine."""
