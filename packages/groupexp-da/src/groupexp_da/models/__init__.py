"""groupexp_da.models."""
