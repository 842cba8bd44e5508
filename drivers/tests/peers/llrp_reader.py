"""A UHF RFID reader for the LLRP driver's tests: llrpkit's LLRPEmulator with a
tag population the test changes at run time (e-bikes arriving and leaving).

Usage: llrp_reader.py PORT
Control (JSON lines on stdin):
  {"op": "tags", "tags": [{"epc": "hex", "antennas": [1], "rssi": -50}]}
Reports: {"ready": true, "port": N}
"""

import asyncio
import json
import sys

from llrpkit.emulator import LLRPEmulator
from llrpkit.emulator.core import EmulatedTag


def report(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    emu = LLRPEmulator(port=int(sys.argv[1]), tags=[], reads_per_sec=80.0, antenna_count=4)
    await emu.start()
    report({"ready": True, "port": emu.port})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("op") == "tags":
            emu.tags = [
                EmulatedTag(
                    epc=bytes.fromhex(t["epc"]),
                    antennas=tuple(t.get("antennas", [1])),
                    rssi_dbm=float(t.get("rssi", -50.0)),
                )
                for t in msg["tags"]
            ]
            report({"tags": len(emu.tags)})
    await emu.stop()


if __name__ == "__main__":
    asyncio.run(main())
