"""The production path on one machine: Redis, the ticketing services, Prometheus, Alertmanager.

``python -m examples.stack`` runs it until Ctrl-C; tests use :class:`Stack` directly.
"""

from examples.stack._config import ALWAYS, QUICK
from examples.stack.loadgen import LoadGenerator
from examples.stack.stack import Keys, Stack, StackConfig

__all__ = ["ALWAYS", "QUICK", "Keys", "LoadGenerator", "Stack", "StackConfig"]
