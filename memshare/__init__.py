"""MemShare: KV-cache block sharing for reasoning models (arXiv 2507.21433)."""

__version__ = "0.1.0"
