"""The host machine: arches, distributions and archives, tools, mounts, qemu, progress."""
