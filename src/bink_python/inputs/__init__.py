"""Every external input pinned in images.lock, fetched into a verified cache, and updated."""
