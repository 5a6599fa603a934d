"""Fixtures several integration modules share."""

from tests.support.failover_rig import brokers, setup  # noqa: F401 - the broker-failover rig
