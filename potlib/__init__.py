"""potlib: the executable companion's library.

Experiments write result rows (``potlib.results``); notebooks only load and draw them.
Nothing in this package imports notebook machinery.
"""

__version__ = "0.1.0"
