"""The reference Control Panel for `gatewayd bench`: libosdp's own CP (C, via
its Python binding) on the same pty bus, doing what the gateway does for the
benchmark: on a card read, command the lock output. Same PD, same bus, so the
two latencies compare.

Usage: osdp_cp_ref.py PTY ADDR KEYHEX
Reports: {"ready": true} once the secure channel is up.
"""

import json
import os
import sys
import termios
import threading
import tty

import osdp


class PtyChannel(osdp.Channel):
    def __init__(self, path):
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def read(self, max_bytes):
        try:
            return os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""

    def write(self, buf):
        try:
            return os.write(self.fd, buf)
        except BlockingIOError:
            return 0

    def flush(self):
        pass


def report(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    path, addr, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
    info = osdp.PDInfo(addr, PtyChannel(path), scbk=key, flags=[osdp.LibFlag.EnforceSecure])
    cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Error)
    cp.start()
    if not cp.sc_wait(addr, timeout=15):
        report({"error": "no secure channel"})
        sys.exit(1)
    report({"ready": True})

    def serve():
        while True:
            ev = cp.get_event(addr, timeout=1)
            if ev and ev.get("event") == osdp.Event.CardRead:
                cp.submit_command(addr, {
                    "command": osdp.Command.Output,
                    "output_no": 0,
                    "control_code": 5,
                    "timer_count": 20,
                })

    threading.Thread(target=serve, daemon=True).start()
    for _ in sys.stdin:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
