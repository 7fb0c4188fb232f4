"""Built-in batteries (each module one default plugin)."""
