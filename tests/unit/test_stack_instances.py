"""The stack manager runs N API and M processor instances (STACK_APIS, STACK_PROCESSORS)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from scripts import stackctl
from scripts.stackctl import apps, config

pytestmark = pytest.mark.unit


def test_one_instance_of_each_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACK_APIS", raising=False)
    monkeypatch.delenv("STACK_PROCESSORS", raising=False)
    assert config.instance_names("api") == ["api"]
    assert config.instance_names("processor") == ["processor"]
    assert config.instance_names("banksim") == ["banksim"]


def test_counts_from_the_environment_name_each_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_APIS", "2")
    monkeypatch.setenv("STACK_PROCESSORS", "3")
    assert config.instance_names("api") == ["api", "api-1"]
    assert config.instance_names("processor") == ["processor", "processor-1", "processor-2"]
    assert [config.kind_of(n) for n in ("api-1", "processor-2", "banksim")] == [
        "api",
        "processor",
        "banksim",
    ]
    assert [config.instance_index(n) for n in ("api", "api-1", "processor-2")] == [0, 1, 2]


@pytest.mark.parametrize("raw", ["0", "-1", "two", ""])
def test_a_bad_count_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("STACK_APIS", raw)
    with pytest.raises(stackctl.StackError):
        config.instance_names("api")


def test_each_api_instance_has_its_own_reply_partition_and_shares_the_port() -> None:
    assert apps.api_instance_env({}, "api") == {
        "API_INSTANCE": "0",
        "API_REUSE_PORT": "true",
    }
    assert apps.api_instance_env({}, "api-1") == {
        "API_INSTANCE": "1",
        "API_REUSE_PORT": "true",
    }
    # An exported API_INSTANCE is the first instance's; the others follow it.
    assert apps.api_instance_env({"API_INSTANCE": "2"}, "api-1")["API_INSTANCE"] == "3"


def test_instances_left_running_by_a_larger_count_are_still_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACK_PROCESSORS", "1")
    cfg = stackctl.load_config(argparse.Namespace(dir=str(tmp_path)))
    config.prepare_dirs(cfg)
    for name in ("processor", "processor-2", "processor-1", "processor-1.child"):
        (cfg.pids / f"{name}.pid").write_text("1\n")
    assert cfg.instances("processor") == ["processor", "processor-1", "processor-2"]


def test_the_benchmark_sums_the_cpu_of_every_instance_of_a_kind(tmp_path: Path) -> None:
    from bench import cpu

    (tmp_path / "pids").mkdir()
    for name, pid in (("api", 11), ("api-1", 12), ("api-1.child", 99), ("processor", 21)):
        (tmp_path / "pids" / f"{name}.pid").write_text(f"{pid}\n")
    assert cpu.read_pids(tmp_path) == {"api": [11, 12], "processor": [21]}


def test_the_scale_out_scenario_runs_2_apis_and_3_processors_then_one_of_each() -> None:
    from bench import scenarios
    from bench.stackctl import Stack

    restarts: list[tuple[list[str], dict[str, str]]] = []

    class Recorder(Stack):
        def restart(self, apps: list[str], overrides: dict[str, str]) -> None:
            restarts.append((apps, overrides))

    seen: list[str] = []

    def sweep(scenario: str) -> list[dict[str, object]]:
        seen.append(scenario)
        assert restarts[-1][1]["STACK_APIS"] == "2"  # the sweep runs scaled out
        return []

    stack = Recorder(Path("/nonexistent"), {})
    scenarios.scale_out(stack, {"API_RATE_LIMIT_PER_MINUTE": "9"}, sweep)
    assert seen == ["4-scale-out"]
    assert restarts == [
        (
            ["api", "processor"],
            {"API_RATE_LIMIT_PER_MINUTE": "9", "STACK_APIS": "2", "STACK_PROCESSORS": "3"},
        ),
        (
            ["api", "processor"],
            {"API_RATE_LIMIT_PER_MINUTE": "9", "STACK_APIS": "1", "STACK_PROCESSORS": "1"},
        ),
    ]
