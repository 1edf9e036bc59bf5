"""The data layer: validate source folders and compile them into immutable snapshots."""

__version__ = "0.1.0"
