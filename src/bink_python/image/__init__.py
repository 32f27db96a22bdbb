"""Images assembled from layers: the image description, layers, loader cache, SBOM, sizes, diff."""
