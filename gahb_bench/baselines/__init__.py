"""Baseline denoisers that need no training: wavelet thresholding and bandlets."""
