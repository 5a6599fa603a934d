"""Ladewache simulators: a charging cabinet that speaks Modbus TCP, so everything runs without hardware.

``physics`` models one iPad on its charger, ``cabinet`` a whole cabinet with a simulated clock,
``device_image`` turns the cabinet's state into the register maps of ``cabinet_agent``'s profiles,
``modbus_server`` serves them, ``control`` is a JSON HTTP API to change the cabinet from tests
and demos, ``cli`` is the ``cabinet-sim`` command.
"""

__all__: list[str] = []
