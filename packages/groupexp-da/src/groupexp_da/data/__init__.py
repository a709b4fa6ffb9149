"""groupexp_da.data."""
