"""OSDP peripheral devices (libosdp's PeripheralDevice) on one RS-485 bus, for
the OSDP driver's tests and benchmark.

The bus is a pty (one end of a socat pair). Every PD sees every byte the CP
sends, as on a real multi-drop bus: a reader thread copies what arrives on the
pty into each PD's receive buffer, and the PDs' replies go out on the pty.

Control: one JSON object per line on stdin; reports: one per line on stdout.
  {"op": "card", "addr": 1, "bits": 26, "data": "hex"}      card read (raw Wiegand)
  {"op": "keypad", "addr": 1, "keys": "1234#"}               key presses
  {"op": "input", "addr": 1, "report": [1, 0]}               input status
  {"op": "local", "addr": 1, "tamper": 1, "power": 0}        tamper / power status
  {"op": "pause", "addr": 1} / {"op": "resume", "addr": 1}   stop / restart answering
  {"op": "quit"}
Reports: {"ready": true}, {"addr": 1, "command": {...}} for every command the
CP sent that the PD executed (bytes as hex), {"addr": 1, "sc": true} when the
secure channel comes up.

Usage: osdp_pd.py PTY ADDR:KEY[:flags] ...   KEY is 32 hex digits or "install";
flags: "plain" (no secure channel enforced).
"""

import json
import os
import sys
import termios
import threading
import time
import tty

import osdp


class BusChannel(osdp.Channel):
    def __init__(self, bus):
        super().__init__()
        self.bus = bus
        self.buf = bytearray()
        self.lock = threading.Lock()
        # A paused PD is like one that lost power: it hears nothing.
        self.listening = True

    def feed(self, data):
        with self.lock:
            if self.listening:
                self.buf += data

    def read(self, max_bytes):
        with self.lock:
            out = bytes(self.buf[:max_bytes])
            del self.buf[:max_bytes]
        return out

    def write(self, data):
        return self.bus.write(data)

    def flush(self):
        with self.lock:
            self.buf.clear()


class Bus:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.channels = []
        self.wlock = threading.Lock()
        self.alive = True
        threading.Thread(target=self.pump, daemon=True).start()

    def channel(self):
        ch = BusChannel(self)
        self.channels.append(ch)
        return ch

    def pump(self):
        while self.alive:
            try:
                data = os.read(self.fd, 512)
            except OSError:
                # The other end went away (socat stopped): the bus is gone.
                self.alive = False
                report({"bus": "closed"})
                return
            if not data:
                time.sleep(0.005)
                continue
            for ch in self.channels:
                ch.feed(data)

    def write(self, data):
        with self.wlock:
            try:
                return os.write(self.fd, data)
            except OSError:
                return -1


out_lock = threading.Lock()


def report(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def plain(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


CAPS = osdp.PDCapabilities([
    (osdp.Capability.OutputControl, 1, 4),
    (osdp.Capability.ContactStatusMonitoring, 1, 2),
    (osdp.Capability.LEDControl, 1, 1),
    (osdp.Capability.AudibleControl, 1, 1),
    (osdp.Capability.TextOutput, 1, 1),
    (osdp.Capability.CommunicationSecurity, 1, 1),
])

COMMAND_NAMES = {
    osdp.Command.Output: "output",
    osdp.Command.Buzzer: "buzzer",
    osdp.Command.LED: "led",
    osdp.Command.Text: "text",
    osdp.Command.Keyset: "keyset",
    osdp.Command.Status: "status",
}


def make_pd(bus, spec):
    parts = spec.split(":")
    addr = int(parts[0])
    key = parts[1]
    flags = set(parts[2:])
    pd_flags = []
    scbk = None
    if key == "install":
        pd_flags.append(osdp.LibFlag.InstallMode)
    else:
        scbk = bytes.fromhex(key)
        if "plain" not in flags:
            pd_flags.append(osdp.LibFlag.EnforceSecure)
    info = osdp.PDInfo(addr, bus.channel(), scbk=scbk, flags=pd_flags,
                       name="pd-%d" % addr)
    pd = osdp.PeripheralDevice(info, CAPS, log_level=osdp.LogLevel.Error)

    def on_command(cmd):
        name = COMMAND_NAMES.get(cmd.get("command"), str(cmd.get("command")))
        body = {k: plain(v) for k, v in cmd.items() if k != "command"}
        body["name"] = name
        report({"addr": addr, "command": body, "t": time.monotonic()})
        return 0, None

    pd.set_command_handler(on_command)
    pd.bus_channel = info.channel
    return addr, pd


def main():
    bus = Bus(sys.argv[1])
    pds = dict(make_pd(bus, spec) for spec in sys.argv[2:])
    for pd in pds.values():
        pd.start()
    report({"ready": True})

    def watch_sc():
        seen = {}
        while bus.alive:
            for addr, pd in pds.items():
                try:
                    active = bool(pd.is_sc_active())
                except Exception:
                    continue
                if seen.get(addr) != active:
                    seen[addr] = active
                    report({"addr": addr, "sc": active})
            time.sleep(0.05)

    threading.Thread(target=watch_sc, daemon=True).start()

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            report({"error": "not JSON: " + line})
            continue
        op = msg.get("op")
        if op == "quit":
            break
        pd = pds.get(msg.get("addr"))
        if pd is None:
            report({"error": "no PD at address %r" % msg.get("addr")})
            continue
        if op == "card":
            bits = int(msg["bits"])
            pd.submit_event({
                "event": osdp.Event.CardRead,
                "reader_no": 0,
                "direction": 0,
                "length": bits,
                "format": osdp.CardFormat.Wiegand,
                "data": bytes.fromhex(msg["data"]),
            })
            report({"addr": msg["addr"], "submitted": "card", "t": time.monotonic()})
        elif op == "keypad":
            pd.submit_event({
                "event": osdp.Event.KeyPress,
                "reader_no": 0,
                "data": msg["keys"].encode("ascii"),
            })
        elif op == "input":
            pd.submit_event({
                "event": osdp.Event.Status,
                "type": osdp.StatusReportType.Input,
                "report": bytes(msg["report"]),
            })
        elif op == "local":
            pd.submit_event({
                "event": osdp.Event.Status,
                "type": osdp.StatusReportType.Local,
                "report": bytes([msg.get("tamper", 0), msg.get("power", 0)]),
            })
        elif op == "pause":
            pd.bus_channel.listening = False
            pd.stop()
            pd.bus_channel.flush()
            report({"addr": msg["addr"], "paused": True})
        elif op == "resume":
            pd.bus_channel.listening = True
            pd.start()
            report({"addr": msg["addr"], "paused": False})
        else:
            report({"error": "unknown op %r" % op})
    bus.alive = False
    for pd in pds.values():
        try:
            pd.stop()
        except RuntimeError:
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
