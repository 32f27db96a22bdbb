"""OCI bytes: deterministic tars, layer compression, the image layout, paths inside a root."""
