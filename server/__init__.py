"""Ladewache central collector: subscribes to every cabinet, stores series, keeps fleet state, alerts.

The agent never imports this package; this package imports only the agent's shared, light modules
(``cabinet_agent.common.protocol``, ``cabinet_agent.common.configfile``, ``cabinet_agent.common.errors``).
"""

from .version import __version__

__all__ = ["__version__"]
