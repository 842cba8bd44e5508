#!/usr/bin/env python3
"""The long fault runs of issue 14, opt-in (minutes, needs root for the disk):

    bash deploy/dev.sh setup && cargo build --release --bin gatewayd
    .venv/bin/python deploy/torture.py [--kills 100] [--rate 200] [--disk-mb 16]

Runs the release gatewayd against a real mosquitto (its own, on a free port)
with one plate camera pushing over HTTP, unique plates, at `--rate` pushes/s:

1. kills: SIGKILL the gateway every 0.5-2 s and start it again; every few
   kills the broker is restarted too;
2. disk (root only): the journal's folder on a tmpfs of `--disk-mb` MiB that a
   filler file fills for 10 s, then frees; memory (RSS) is watched;
3. stop: SIGTERM, timed.

Then it checks what the platform (a paho subscriber, persistent session)
received against what the camera was told: every push answered 200 must
have reached the platform (durable before "ok", nothing lost after), `seq`
gap-free. Prints the figures for the README; exits 1 on a loss or a gap.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

ESTATE, GATEWAY, SECRET = "torture", "gw", "torture-cam-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto with its own config; persistent so a restart keeps sessions."""

    def __init__(self, root):
        self.port = free_port()
        self.dir = os.path.join(root, "broker")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence true\npersistence_location {self.dir}/\n"
                "max_queued_messages 0\nmax_inflight_messages 0\n"
                "message_size_limit 1048576\n"
            )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", self.conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("mosquitto did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)  # saves the sessions
            self.proc.wait(10)
            self.proc = None


class Platform:
    """The platform: every record of the gateway, by seq, and the plates seen."""

    def __init__(self, port):
        self.seqs = {}
        self.plates = set()
        self.lock = threading.Lock()
        self.last = time.time()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="torture-platform",
            clean_session=False,
        )
        self.c.on_message = self.on_message
        self.c.on_connect = lambda c, *_: c.subscribe(f"cm/{ESTATE}/{GATEWAY}/#", qos=1)
        self.c.reconnect_delay_set(0.1, 1)
        self.c.connect_async("127.0.0.1", port, keepalive=5)
        self.c.loop_start()

    def on_message(self, _c, _u, msg):
        try:
            rec = json.loads(msg.payload)
        except ValueError:
            return
        seq = rec.get("seq") if isinstance(rec, dict) else None
        if seq is None:
            return
        with self.lock:
            self.seqs[seq] = self.seqs.get(seq, 0) + 1
            cred = rec.get("credential") or {}
            if cred.get("value"):
                self.plates.add(cred["value"])
            self.last = time.time()


class Camera:
    """Pushes unique plates at `rate`/s from a few threads; keeps the answers."""

    def __init__(self, port, rate):
        self.port, self.rate = port, rate
        self.ok, self.refused, self.failed = set(), 0, 0
        self.n = 0
        self.lock = threading.Lock()
        self.running = False
        self.first_ok = None

    def plate(self):
        with self.lock:
            self.n += 1
            n = self.n
        # 京A + 5 digits: unique for 100,000 pushes.
        return "京A" + f"{n % 100000:05d}"

    def worker(self, every):
        while self.running:
            t0 = time.time()
            plate = self.plate()
            body = json.dumps({"plate": plate, "colour": "blue", "confidence": 0.9})
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                c.request("POST", "/plates/gate-cam", body.encode(),
                          {"Authorization": f"Bearer {SECRET}",
                           "Content-Type": "application/json"})
                status = c.getresponse().status
                c.close()
            except OSError:
                status = None
            with self.lock:
                if status == 200:
                    self.ok.add(plate)
                    if self.first_ok is None:
                        self.first_ok = time.time()
                elif status == 503:
                    self.refused += 1
                else:
                    self.failed += 1
            time.sleep(max(0.0, every - (time.time() - t0)))

    def start(self, threads=8):
        self.running = True
        self.threads = [threading.Thread(target=self.worker, args=(threads / self.rate,), daemon=True)
                        for _ in range(threads)]
        for t in self.threads:
            t.start()

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join()


def config(root, mqtt_port, http_port):
    path = os.path.join(root, "gateway.toml")
    secret = os.path.join(root, "cam.secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    with open(path, "w") as f:
        f.write(f"""
[gateway]
id = "{GATEWAY}"
estate = "{ESTATE}"
data_dir = "{root}/data"
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
keep_alive_s = 5
[retention]
max_disk_mb = 6
check_every_s = 2
[console]
listen = "127.0.0.1:{free_port()}"
[[doors]]
id = "car-gate"
zone = "car-park"
kind = "barrier"
[[devices]]
id = "gate-cam"
driver = "lpr-http"
door = "car-gate"
direction = "in"
listen = "127.0.0.1:{http_port}"
secret_file = "{secret}"
""")
    return path


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/gatewayd")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--disk-mb", type=int, default=16)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.path.exists(binary):
        raise SystemExit(f"{binary} not found: cargo build --release --bin gatewayd")

    root = tempfile.mkdtemp(prefix="gatewayd-torture-")
    broker = Broker(root)
    broker.start()
    platform = Platform(broker.port)
    http_port = free_port()
    cfg = config(root, broker.port, http_port)
    env = dict(os.environ, GATEWAYD_LOG="warn")
    mounted = False
    if os.geteuid() == 0:
        disk = os.path.join(root, "disk")
        os.makedirs(disk)
        mounted = subprocess.call(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", disk]) == 0
        if mounted:
            os.makedirs(os.path.join(disk, "journal"))
            os.makedirs(os.path.join(root, "data"))
            os.symlink(os.path.join(disk, "journal"), os.path.join(root, "data", "journal"))

    def spawn():
        return subprocess.Popen([binary, "run", "-c", cfg], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "gatewayd.log"), "a"))

    cam = Camera(http_port, args.rate)
    gw = spawn()
    time.sleep(1.0)
    cam.start()
    restarts = []
    broker_restarts = 0
    try:
        # 1. kills
        for i in range(args.kills):
            time.sleep(random.uniform(0.5, 2.0))
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            if i % 20 == 19:
                broker.stop()
                time.sleep(0.5)
                broker.start()
                broker_restarts += 1
            before = len(cam.ok)
            t0 = time.time()
            gw = spawn()
            # Online: the first push answered 200 after the start.
            while len(cam.ok) == before and time.time() - t0 < 15:
                time.sleep(0.005)
            restarts.append(time.time() - t0)
        # 2. disk
        disk_figures = None
        if mounted:
            filler = os.path.join(root, "disk", "filler")
            peak = rss_mb(gw.pid)
            ok_before, refused_before = len(cam.ok), cam.refused
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            t_end = time.time() + 10
            while time.time() < t_end:
                peak = max(peak, rss_mb(gw.pid))
                time.sleep(0.2)
            os.remove(filler)
            t_free = time.time()
            ok_at_free = len(cam.ok)
            while len(cam.ok) == ok_at_free and time.time() - t_free < 30:
                peak = max(peak, rss_mb(gw.pid))
                time.sleep(0.05)
            recovered = time.time() - t_free
            time.sleep(5)
            disk_figures = (cam.refused - refused_before, len(cam.ok) - ok_before, peak, recovered)
        cam.stop()
        # 3. stop
        t0 = time.time()
        gw.send_signal(signal.SIGTERM)
        gw.wait(60)
        stop_s = time.time() - t0
        # Let the platform catch up: start once more until nothing new arrives for 5 s.
        gw = spawn()
        while time.time() - platform.last < 5:
            time.sleep(0.5)
        gw.send_signal(signal.SIGTERM)
        gw.wait(60)
    finally:
        if gw.poll() is None:
            gw.kill()
        broker.stop()
        if mounted:
            subprocess.call(["umount", "-l", os.path.join(root, "disk")])

    with platform.lock:
        seqs = sorted(platform.seqs)
        lost = sorted(cam.ok - platform.plates)
        dups = sum(n - 1 for n in platform.seqs.values())
    gaps = [s for s in range(1, seqs[-1] + 1) if s not in platform.seqs] if seqs else []
    restarts.sort()
    print(f"torture: {args.kills} SIGKILLs and {broker_restarts} broker restarts under {args.rate} pushes/s")
    print(f"  pushes answered 200: {len(cam.ok)}, 503 (not stored, camera resends): {cam.refused}, "
          f"no answer (gateway down): {cam.failed}")
    print(f"  answered 200 but never reached the platform: {len(lost)}")
    print(f"  records at the platform: {len(seqs)} (seq 1..{seqs[-1] if seqs else 0}), "
          f"gaps: {len(gaps)}, duplicates (at least once): {dups}")
    if restarts:
        print(f"  restart → first push answered 200: median {restarts[len(restarts) // 2]:.2f} s, "
              f"max {restarts[-1]:.2f} s")
    if mounted and disk_figures:
        refused, ok, peak, recovered = disk_figures
        print(f"  disk full for 10 s ({args.disk_mb} MiB tmpfs): {refused} pushes answered 503, {ok} answered 200, "
              f"peak RSS {peak:.0f} MB, first 200 {recovered:.2f} s after space came back")
    elif os.geteuid() != 0:
        print("  disk phase skipped (needs root to mount a tmpfs)")
    print(f"  SIGTERM → exit: {stop_s:.2f} s")
    if os.environ.get("TORTURE_KEEP"):
        print(f"  kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if lost or gaps:
        print(f"FAILED: lost {lost[:10]} gaps {gaps[:10]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
