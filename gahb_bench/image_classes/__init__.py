"""Built-in image classes (each module one default plugin) and the dataset base classes."""
