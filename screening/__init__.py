"""The service layer: decide checks over a snapshot and serve them."""

__version__ = "0.1.0"
