"""Time-series sinks: where slot and cabinet readings go as InfluxDB line protocol."""

from .base import SinkHealth, SinkStats, TimeSeriesSink

__all__ = ["SinkHealth", "SinkStats", "TimeSeriesSink"]
