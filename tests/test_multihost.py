"""The ingestion bus across hosts: network namespaces made by this test (iproute2) stand
for two gateway hosts, a NATS host, two writer hosts and a host of data loggers, on one
bridge; PostgreSQL stays in the root namespace, reached through a small TCP forwarder
on the bridge's address (it listens on 127.0.0.1 only). While the loggers send, a
writer, a gateway and the NATS server are killed with SIGKILL in turn (the writer and
the server are started again); afterwards every value a logger got an answer for is
stored exactly once, and the counts are printed.

Skips, saying why, where namespaces cannot be made (not root, no ``ip``, no
``nats-server``); everything it made is removed, also when it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from ecohub.ingest.bus import BusConfig
from ecohub.simulate.points import register_simulated_points
from tests.test_bus import (
    Processes,
    bus_command,
    bus_env,
    check_exactly_once,
    loggers_command,
    wait_for_empty_backlog,
)

HOSTS = {"gw1": 11, "gw2": 12, "nats": 20, "wr1": 31, "wr2": 32, "lg": 40}
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True, timeout=10)


class Network:
    """A bridge in the root namespace and one namespace per host with a veth on it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:4]
        self.prefix = f"10.213.{int(tag[:2], 16)}"
        self.bridge = f"ehb{tag}"
        self.namespaces = {host: f"eh{tag}-{host}" for host in HOSTS}
        self.veths = {host: f"eh{tag}{host}" for host in HOSTS}
        self.made: list[tuple[str, str]] = []

    def address(self, host: str) -> str:
        return f"{self.prefix}.{HOSTS[host]}" if host != "root" else f"{self.prefix}.1"

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made.append(("link", self.bridge))
        _ip("addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, namespace in self.namespaces.items():
            _ip("netns", "add", namespace)
            self.made.append(("netns", namespace))
            veth, inside = self.veths[host], f"{self.veths[host]}p"
            _ip("link", "add", veth, "type", "veth", "peer", "name", inside)
            self.made.append(("link", veth))
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", veth, "master", self.bridge, "up")
            inner = ("netns", "exec", namespace, "ip")
            _ip(*inner, "addr", "add", f"{self.address(host)}/24", "dev", inside)
            _ip(*inner, "link", "set", inside, "up")
            _ip(*inner, "link", "set", "lo", "up")

    def prefix_of(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host]]

    def delete(self) -> None:
        for kind, name in reversed(self.made):
            with contextlib.suppress(subprocess.SubprocessError):
                _ip(kind, "del", name)


class Forwarder:
    """TCP from ``listen`` to ``target``, a thread per direction of each connection."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.server = socket.create_server(listen)
        self.target = target
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closing = True
        self.server.close()


@pytest.fixture
def network() -> Iterator[Network]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the multi-host test makes network namespaces: it needs root and iproute2")
    if not os.path.exists(NATS_SERVER):
        pytest.skip("the multi-host test runs its own nats-server: none is installed")
    made = Network()
    try:
        made.create()
    except subprocess.CalledProcessError as error:
        made.delete()
        reason = error.stderr.decode(errors="replace").strip()
        pytest.skip(f"cannot make network namespaces here (ip: {reason})")
    try:
        yield made
    finally:
        made.delete()


def _stamp(started: float, what: str) -> None:
    print(f"{time.monotonic() - started:6.1f} s  {what}", flush=True)


# Several writer hosts need PostgreSQL.
@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_hosts_killed_in_turn_lose_nothing(
    network: Network,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    points = register_simulated_points(engine, 12)
    url = make_url(database_url)
    forwarder = Forwarder((network.address("root"), 0), (url.host or "127.0.0.1", url.port or 5432))
    port = forwarder.server.getsockname()[1]
    remote = url.set(host=network.address("root"), port=port).render_as_string(False)
    nats_url = f"nats://{network.address('nats')}:4222"
    env = bus_env(remote, nats_url, "ECOHUB_MULTIHOST")
    store = tmp_path / "nats"
    server = [NATS_SERVER, "-a", network.address("nats"), "-p", "4222", "-js", "-sd", str(store)]
    nats = [*network.prefix_of("nats"), *server]
    gateway = {
        host: bus_command(
            "gateway",
            "--host",
            network.address(host),
            "--port",
            "9000",
            prefix=network.prefix_of(host),
        )
        for host in ("gw1", "gw2")
    }
    writer = {
        host: bus_command(
            "writer", "--index", str(i), "--count", "2", prefix=network.prefix_of(host)
        )
        for i, host in enumerate(("wr1", "wr2"))
    }
    output = tmp_path / "acknowledged.txt"
    processes = Processes(tmp_path)
    started = time.monotonic()
    try:
        processes.start("nats", nats, env)
        processes.wait_for("nats", "Server is ready")
        for host in ("gw1", "gw2", "wr1", "wr2"):
            processes.start(host, (gateway | writer)[host], env)
        for host in ("gw1", "gw2"):
            processes.wait_for(host, "gateway_started")
        for host in ("wr1", "wr2"):
            processes.wait_for(host, "bus_partition_taken")
        _stamp(started, "NATS, gateways and writers ready in their namespaces")
        gateways = [f"{network.address(host)}:9000" for host in ("gw1", "gw2")]
        loggers = loggers_command(points, gateways, 10.0, output, 0.05)
        processes.start("loggers", [*network.prefix_of("lg"), *loggers], env)
        time.sleep(2.5)
        processes.kill("wr1")
        processes.start("wr1", writer["wr1"], env)
        _stamp(started, "writer host wr1 killed and started again")
        time.sleep(2.5)
        processes.kill("gw1")
        _stamp(started, "gateway host gw1 killed")
        time.sleep(2.5)
        processes.kill("nats")
        _stamp(started, "NATS server killed")
        time.sleep(1.5)
        processes.start("nats", nats, env)
        _stamp(started, "NATS server started again")
        assert processes.running["loggers"].wait(90) == 0, processes.log("loggers")
        _stamp(started, f"loggers done: {processes.log('loggers').strip().splitlines()[-1]}")
        config = BusConfig(nats_url, stream="ECOHUB_MULTIHOST", partitions=4)
        status = wait_for_empty_backlog(config)
        _stamp(started, f"bus drained: {status['messages']} messages")
        for host in ("wr1", "wr2"):
            assert processes.stop(host) == 0, processes.log(host)
        processes.stop("gw2")
    finally:
        processes.kill_all()
        forwarder.close()
    check_exactly_once(engine, output, "multi-host (namespaces)", record_property)
