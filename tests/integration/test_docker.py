"""What the Docker image runs, run here without Docker: the entrypoint
script with the image's default config (examples/imqtt.json, only ports
and paths moved into a temporary directory), its HEALTHCHECK command, and
a clean exit on SIGTERM. Plus static checks of the Dockerfile."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import IMQTT_BIN, SOURCE_DIR, free_port
from opshelp import RawWS, certs

pytestmark = pytest.mark.imqtt_only
ENTRY = os.path.join(SOURCE_DIR, "docker", "entrypoint.sh")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "imqtt.json")


def test_dockerfile_contract():
    text = open(os.path.join(SOURCE_DIR, "Dockerfile")).read()
    assert text.count("FROM debian:bookworm-slim") == 2
    expose = re.search(r"^EXPOSE (.*)$", text, re.M).group(1).split()
    cfg = json.load(open(EXAMPLE))
    ports = {str(l["port"]) for l in cfg["listeners"]} | {str(cfg["http"]["port"])}
    assert {"1883", "8883", "8083", "8084"} <= set(expose) and ports <= set(expose)
    assert re.search(r"^USER imqtt$", text, re.M)
    assert "HEALTHCHECK" in text and "healthcheck" in text
    assert re.search(r'^VOLUME .*"/var/lib/imqtt"', text, re.M)
    assert cfg["store"]["dir"] == "/var/lib/imqtt"
    compose = open(os.path.join(SOURCE_DIR, "docker-compose.yml")).read()
    assert "/var/lib/imqtt" in compose and "/etc/imqtt/imqtt.json" in compose


def test_entrypoint_runs_default_config(tmp_path):
    c = certs()
    cfg = json.load(open(EXAMPLE))
    cert_dir = tmp_path / "certs"
    ports = {}
    for lst in cfg["listeners"]:
        ports[lst["transport"] if "transport" in lst else "tcp"] = lst["port"] = free_port()
        lst["bind"] = "127.0.0.1"
        if "tls" in lst:
            lst["tls"]["cert_file"] = str(cert_dir / "server.crt")
            lst["tls"]["key_file"] = str(cert_dir / "server.key")
    cfg["http"] = {"bind": "127.0.0.1", "port": free_port()}
    cfg["store"]["dir"] = str(tmp_path / "data")
    path = tmp_path / "imqtt.json"
    path.write_text(json.dumps(cfg))
    env = dict(os.environ, IMQTT_BIN=IMQTT_BIN, IMQTT_CONFIG=str(path),
               IMQTT_CERT_DIR=str(cert_dir),
               IMQTT_HEALTH="127.0.0.1:%d" % cfg["http"]["port"])
    log = open(tmp_path / "log", "wb")
    p = subprocess.Popen([ENTRY], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while subprocess.run([ENTRY, "healthcheck"], env=env).returncode != 0:
            assert p.poll() is None, (tmp_path / "log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.1)
        # the entrypoint made a self-signed certificate, every listener serves
        assert (cert_dir / "server.crt").exists()
        assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
        out = subprocess.run(["mosquitto_pub", "-p", str(ports["tcp"]), "-t", "d/t", "-m", "x",
                              "-q", "1"], timeout=10)
        assert out.returncode == 0
        out = subprocess.run(["mosquitto_pub", "-p", str(ports["tls"]), "--insecure",
                              "--cafile", str(cert_dir / "server.crt"), "-t", "d/t", "-m", "x"],
                             timeout=10, capture_output=True)
        assert out.returncode == 0, out.stderr
        RawWS(ports["ws"]).close()
        # SIGTERM to the entrypoint is SIGTERM to the broker (exec)
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert "stopped" in (tmp_path / "log").read_text()
    del c


def test_healthcheck_fails_when_down():
    env = dict(os.environ, IMQTT_HEALTH="127.0.0.1:%d" % free_port())
    assert subprocess.run([ENTRY, "healthcheck"], env=env,
                          stderr=subprocess.DEVNULL).returncode != 0
