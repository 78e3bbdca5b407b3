"""The ``memshare`` command line."""
