"""The indexed inhibition gives exactly the answer of checking every alert against every other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from server.alerts.model import Alert
from server.alerts.status import INHIBIT_RULES, alert_statuses
from tests.support.explore import examples

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

labels = st.fixed_dictionaries(
    {"alertname": st.sampled_from(["cabinet_offline", "device_fault", "over_temperature",
                                   "ipad_not_charging", "door_open"]),
     "site": st.sampled_from(["a", "b"]), "cabinet": st.sampled_from(["k1", "k2"]),
     "severity": st.sampled_from(["warning", "critical"])},
    optional={"slot": st.sampled_from(["1", "2"])},
)
alert = st.builds(
    lambda lab, firing, resolved: Alert(
        lab, {}, NOW - timedelta(hours=1),
        NOW - timedelta(minutes=30) if firing else NOW + timedelta(minutes=5),
        NOW - timedelta(minutes=1) if resolved else None),
    labels, st.booleans(), st.booleans())


def _brute_force(target: Alert, firing: list[Alert]) -> str | None:
    for source in firing:
        if source.fingerprint == target.fingerprint:
            continue
        for rule in INHIBIT_RULES:
            if (rule.source(source.labels) and rule.target(target.labels, source.labels)
                    and all(source.labels.get(k) == target.labels.get(k) for k in rule.equal)):
                return source.fingerprint
    return None


@settings(max_examples=examples(300))
@given(st.lists(alert, max_size=25, unique_by=lambda a: a.fingerprint))
def test_indexed_inhibition_equals_the_brute_force_definition(alerts: list[Alert]) -> None:
    statuses = alert_statuses(alerts, [], [], NOW)
    firing = [s.alert for s in statuses if s.state.value == "firing"]
    for status in statuses:
        expected = None if status.state.value == "resolved" else _brute_force(status.alert, firing)
        assert status.inhibited_by == expected
