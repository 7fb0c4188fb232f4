"""Preparing real photographs (CelebA, LSUN, any folder) into the data root."""
