"""What leaves the machine: pushes, archives and the README generated from the family."""
