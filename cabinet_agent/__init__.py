"""Ladewache cabinet agent: reads a charging cabinet's sensors and publishes them over MQTT.

This package must stay light: it never imports ``server``, influxdb-client or a web framework.
"""

__version__ = "0.1.0"
