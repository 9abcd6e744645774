"""`make metrics` (scripts/statsd_capture.py) receives what the service's DogStatsD client sends.

Real UDP on loopback, with the `datadog` package's client that the service uses: the listener
runs for its given time while the client sends until it has stopped.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from datadog.dogstatsd.base import DogStatsd

from tests.fixtures.stack import PROJECT

pytestmark = pytest.mark.integration


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_capture_prints_the_counters_gauges_and_histograms_it_received() -> None:
    port = free_udp_port()
    script = str(PROJECT / "scripts" / "statsd_capture.py")
    listener = subprocess.Popen(
        [sys.executable, script, "--port", str(port), "--seconds", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = DogStatsd(host="127.0.0.1", port=port, disable_telemetry=True)
    sent = 0
    try:
        # Send until the listener has finished: whatever it was bound for, it saw some of these.
        while listener.poll() is None and sent < 10_000:
            client.increment("payments.test.processed", tags=["currency:USD"])
            client.gauge("payments.test.inflight", 7)
            client.histogram("payments.test.latency_ms", 12.5)
            client.flush()
            sent += 1
            time.sleep(0.01)
        out, err = listener.communicate(timeout=30)
    finally:
        client.close_socket()
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, err
    assert "payments.test.processed{currency:USD}" in out
    assert "payments.test.inflight" in out
    assert "gauge 7" in out
    assert "payments.test.latency_ms" in out
    assert "histogram n=" in out
