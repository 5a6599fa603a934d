"""What the agent and the server share: the wire protocol, config loading, errors, back-off,
the service manager notification, transport security checks, durations and the registry style.
Nothing here imports a server dependency (tests/unit/test_agent_footprint.py checks the agent)."""
