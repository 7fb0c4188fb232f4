"""Built-in metrics (each module one default plugin), the metric context and PSNR arithmetic."""
