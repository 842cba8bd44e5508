#!/usr/bin/env python3
"""A real RTSP server for the camera tests: GStreamer's RTSP server (python3-gi)
streaming H.264 at /cam from a still image (JPEG) or a video file.

    rtsp_server.py --port N (--image FILE | --video FILE) [--fps 10]

Prints "ready" once listening; runs until killed.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--image")
    src.add_argument("--video")
    ap.add_argument("--fps", type=int, default=10)
    args = ap.parse_args()
    Gst.init(None)
    caps = f"video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate={args.fps}/1"
    if args.image:
        head = f'filesrc location="{args.image}" ! jpegdec ! imagefreeze'
    else:
        head = f'filesrc location="{args.video}" ! decodebin'
    launch = (
        f"( {head} ! videoconvert ! videoscale add-borders=true ! videorate ! {caps} ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
