"""A Modbus device (pymodbus server) for the Modbus driver's tests: a barrier
or sensor panel with coils, discrete inputs, holding and input registers
(addresses 0..63; anything else answers "illegal data address").

Usage: modbus_server.py tcp PORT | rtu PTY [BAUD]
Control (JSON lines on stdin):
  {"op": "set", "table": "discrete"|"coil"|"holding"|"input", "address": N, "value": V}
Reports (JSON lines on stdout): {"ready": true}, and for every coil written
{"coil": N, "value": true|false, "t": monotonic seconds}.
"""

import asyncio
import json
import sys
import time

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SIZE = 64
TABLES = {"coil": 0, "discrete": 1, "holding": 2, "input": 3}
FC_TABLE = {1: 0, 5: 0, 15: 0, 2: 1, 3: 2, 6: 2, 16: 2, 4: 3}
state = [[0] * SIZE for _ in range(4)]


def report(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def action(fc, start, address, count, regs, set_values):
    table = FC_TABLE.get(fc)
    if table is None:
        return None
    if set_values is not None:
        for i, v in enumerate(set_values):
            state[table][address + i] = int(v)
            if table == 0:
                report({"coil": address + i, "value": bool(v), "t": time.monotonic()})
        return None
    if table <= 1:
        # Bits are packed 16 to a register (bit 0 of register 0 is address 0):
        # refresh them all from the state the test sets.
        for r in range(SIZE // 16):
            word = 0
            for b in range(16):
                word |= (state[table][r * 16 + b] & 1) << b
            regs[r - start] = word
        return None
    for i in range(count):
        regs[address - start + i] = state[table][address + i]
    return None


def device():
    bits = lambda: [SimData(0, count=SIZE, values=False, datatype=DataType.BITS)]
    regs = lambda: [SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(1, simdata=(bits(), bits(), regs(), regs()), action=action)


async def control():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("op") == "set":
            state[TABLES[msg["table"]]][int(msg["address"])] = int(msg["value"])


async def main():
    kind = sys.argv[1]
    if kind == "tcp":
        server = ModbusTcpServer(device(), framer=FramerType.SOCKET,
                                 address=("127.0.0.1", int(sys.argv[2])))
    else:
        baud = int(sys.argv[3]) if len(sys.argv) > 3 else 19200
        server = ModbusSerialServer(device(), framer=FramerType.RTU,
                                    port=sys.argv[2], baudrate=baud)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    report({"ready": True})
    await control()
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
