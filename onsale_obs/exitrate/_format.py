"""Numbers as people read them in reasons and tables: ``1,250/min``, ``-40%``, ``1.6s``, ``18x``."""

from __future__ import annotations


def rate(users_per_min: float) -> str:
    """``1250.4`` -> ``1,250/min``."""
    return f"{users_per_min:,.0f}/min"


def change(share: float) -> str:
    """``-0.4`` -> ``-40%``; ``0.125`` -> ``+12%`` (whole percent, sign always shown)."""
    return f"{share * 100:+.0f}%"


def seconds(value: float) -> str:
    """``1.62`` -> ``1.62s``; ``0.85`` -> ``850ms``; ``135`` -> ``2m15s``."""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.3g}s"
    whole = round(value)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"


def times(burn: float) -> str:
    """``18.234`` -> ``18.2x``; ``0.5`` -> ``0.5x``; ``2291.7`` -> ``2,292x``."""
    return f"{burn:,.0f}x" if burn >= 100 else f"{burn:.3g}x"


def share(value: float) -> str:
    """``0.912`` -> ``0.91``."""
    return f"{value:.2f}"
