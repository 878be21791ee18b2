"""onsale-obs: make services aware of ticket on-sales."""

__version__ = "0.1.0"
