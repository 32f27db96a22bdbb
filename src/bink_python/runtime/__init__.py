"""CPython runtimes compiled in a build root, cleaned, checked and packaged."""
