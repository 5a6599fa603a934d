"""The collector config of the notification tests that run real `cabinet-server`s: one district
team told through one webhook, its schools in one municipality, and the notification timings cut
to fractions of a second (test_server_alert_restart, test_leader_failover,
test_broker_down_burst)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["webhook_district"]


def webhook_district(url: str, schools: Sequence[tuple[str, str]], *, secret: str = "s",
                     per_receiver: int | None = None) -> str:
    """``[notify]`` and ``[organisation]`` as TOML: ``url`` is the webhook receiver's base URL,
    ``schools`` (site, name) pairs; ``per_receiver`` caps the tries under way per receiver."""
    delivery = f"[notify.delivery]\nper_receiver = {per_receiver}\n" if per_receiver else ""
    listed = "".join(f"""
[[organisation.schools]]
site = "{site}"
name = "{name}"
municipality = "musterdorf"
""" for site, name in schools)
    return f"""
[notify]
group_wait_s = 0.5
group_interval_s = 1.0
repeat_interval_s = 3600
tick_s = 0.1
{delivery}[notify.webhook]
backoff_initial_s = 0.05
[organisation]
district_team = "kreis-it"
[[organisation.teams]]
id = "kreis-it"
name = "Schul-IT"
[organisation.teams.contacts]
webhooks = [{{ url = "{url}/hook", secret = "{secret}" }}]
[[organisation.municipalities]]
id = "musterdorf"
name = "Musterdorf"
{listed}"""
