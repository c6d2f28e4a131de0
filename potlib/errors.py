"""Error types shared across layers (Core): raised below, understood above."""


class DataUnavailable(Exception):
    """A dataset is missing, corrupt or malformed. The message names the file and how to fix it.

    A sweep stops at the first run that raises it (after recording that run as failed): every other
    config would fail the same way.
    """
