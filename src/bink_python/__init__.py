"""Bink Python: build, verify and publish the Bink Python container base images."""

__version__ = "0.1.0"
