"""Runnable examples of onsale-obs in small services."""
