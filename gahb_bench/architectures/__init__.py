"""Built-in denoiser architectures (each module one default plugin)."""
