"""Ray settings and replica sizing, without a cluster."""

from __future__ import annotations

from types import ModuleType

import pytest

from rankgate.errors import ConfigError
from rankgate.ray import build_batch_settings, build_ray_settings


def test_env_fills_what_arguments_leave_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKGATE_RAY_MAX_QUEUED_REQUESTS", "7")
    monkeypatch.setenv("RANKGATE_RAY_ADDRESS", "auto")
    s = build_ray_settings(address="10.0.0.1:6379", max_ongoing_requests=3)
    assert (s.address, s.max_queued_requests, s.max_ongoing_requests) == ("10.0.0.1:6379", 7, 3)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"min_replicas": 1}, "both"),
        ({"min_replicas": 3, "max_replicas": 2}, "exceeds"),
        ({"replicas": 2, "min_replicas": 1, "max_replicas": 4}, "fixed"),
        ({"max_ongoing_requests": 0}, "max_ongoing_requests"),
    ],
)
def test_inconsistent_ray_settings_are_refused(options: dict[str, int], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        build_ray_settings(**options)


def test_batch_settings_validate() -> None:
    assert build_batch_settings(actors=4).actors == 4
    with pytest.raises(ConfigError, match="shard_rows"):
        build_batch_settings(shard_rows=0)


def serving() -> ModuleType:
    pytest.importorskip("ray")
    from rankgate.ray import serving

    return serving


@pytest.mark.parametrize(
    ("options", "gpus", "want"),
    [
        ({}, 0, (1, None, None, 0.0)),
        ({}, 4, (4, None, None, 1.0)),  # one replica per GPU
        ({"replicas": 2}, 4, (2, None, None, 1.0)),
        ({"num_gpus_per_replica": 0.5}, 2, (4, None, None, 0.5)),
        ({"num_gpus_per_replica": 0}, 8, (1, None, None, 0.0)),
        ({"min_replicas": 1, "max_replicas": 3}, 0, (None, 1, 3, 0.0)),
    ],
)
def test_replica_plan(options: dict[str, float], gpus: float, want: tuple[object, ...]) -> None:
    plan = serving().plan_replicas(build_ray_settings(**options), gpus)
    assert (plan.num_replicas, plan.min_replicas, plan.max_replicas, plan.num_gpus) == want


def test_gpus_asked_but_absent_waits_for_gpu_nodes(caplog: pytest.LogCaptureFixture) -> None:
    plan = serving().plan_replicas(build_ray_settings(num_gpus_per_replica=1), 0)
    assert (plan.num_replicas, plan.num_gpus) == (1, 1.0)
    assert "pending until GPU nodes join" in caplog.text


def test_serve_backpressure_is_429_with_retry_after() -> None:
    s = build_ray_settings(max_queued_requests=5, retry_after_s=2, min_replicas=1, max_replicas=2)
    options = serving().plan_replicas(s, 0).deployment_options(s, grace_s=10)
    assert options["max_queued_requests"] == 5
    assert options["backpressure_config"].status_code == 429
    assert options["backpressure_config"].retry_after_s == 2
    assert options["autoscaling_config"].max_replicas == 2
    assert "num_replicas" not in options


def test_app_builder_rejects_unknown_arguments() -> None:
    with pytest.raises(ConfigError, match="colour"):
        serving().app_builder({"colour": "blue"})


def test_import_is_lazy_and_names_are_sorted() -> None:
    import subprocess
    import sys

    import rankgate.ray

    assert rankgate.ray.__all__ == sorted(rankgate.ray.__all__)
    code = "import sys, rankgate.ray; print('ray' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
