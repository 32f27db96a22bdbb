"""The cache directory: keyed entries committed by rename, and their registered kinds."""
