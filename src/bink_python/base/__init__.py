"""Base root filesystems (regular and distroless), built with mmdebstrap and slimmed."""
