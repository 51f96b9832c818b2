"""Scene packages: the labs a practical takes place in."""
