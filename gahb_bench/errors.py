"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero).

Anything else escaping the CLI is a bug in gahb-bench or in a plugin and keeps its traceback.
"""


class GahbError(Exception):
    """A user-facing error: bad input, a broken plugin, a store that does not match."""

    exit_code = 2


class PluginError(GahbError):
    """A plugin failed to load, registered something invalid, or clashes with another."""


class UnknownNameError(GahbError):
    """A name (architecture, image class, metric, battery, preset) that nobody registered."""


class ParamError(GahbError):
    """A ``--param`` that is malformed or not accepted by the plugin."""


class ModelError(GahbError):
    """A denoiser module that cannot be built or returns the wrong thing."""


class StoreError(GahbError):
    """A results store that is corrupt or was written by a different run."""


class StoreEditedError(StoreError):
    """A store whose content is not what its own identity's plan makes (its coordinates): edited
    or damaged after its run, not merely made by another run or version."""


class StoreWriteError(StoreError):
    """The store cannot be written (read-only media, a full disk): the run stops, keeping every
    cell it finished; rerun once the store is writable."""

    exit_code = 4


class DataError(GahbError):
    """A data-preparation problem the user can fix: missing folder, no images, existing dataset."""


class LeaderboardError(GahbError):
    """A store that cannot be published, or a leaderboard folder that cannot be built."""
