"""A WHEP server on GStreamer's webrtcbin (an independent WebRTC stack), for testing
StreamHub's player against a sender that signals no SSRCs and no MID extension.

Serves POST /whep/<name>: one webrtcbin per session, sending a live video track (H.264
or VP8) whose frames carry a 16-bit frame counter, plus an Opus tone, BUNDLEd. The
answer is webrtcbin's own, with every candidate (no trickle). Listens on 127.0.0.1.

Frame counter, as in aiortc_whep_sender.py: the top 16x256 pixels hold 16 blocks of
16x16 pixels holding the counter's Gray code, bit 15 first; a white block (235) is 1,
a black block (16) is 0.

Modes: normal; silent-video (the video track is negotiated, ICE and DTLS connect, but
no video packet is ever sent); silent (no media packet at all).

Usage: gst_whep_sender.py --port P --codec {h264,h265,vp8} [--mode M] [--answer-out FILE]
Runs with Debian's python3 (python3-gi), not a venv. GET /stats returns counters.
"""

import argparse
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

WIDTH, HEIGHT, FPS = 320, 240, 30
STATS = {"posts": 0, "deletes": 0, "connections": 0, "video_frames_sent": 0}
LOCK = threading.Lock()


def counter_picture(counter):
    """An I420 picture: a moving gradient with the counter's 16 blocks on top."""
    rows = bytearray()
    top = bytearray()
    gray = counter ^ (counter >> 1)
    for bit in range(16):
        on = (gray >> (15 - bit)) & 1
        top += bytes([235 if on else 16]) * 16
    top += bytes([128]) * (WIDTH - 256)
    rows += bytes(top) * 16
    rows += bytes([64]) * (WIDTH * 16)
    gradient = bytes((x + counter * 4) % 220 + 16 for x in range(WIDTH))
    rows += gradient * (HEIGHT - 32)
    chroma = bytes([128]) * (WIDTH * HEIGHT // 2)
    return bytes(rows) + chroma


def payload_types(offer_sdp):
    """The offer's payload types: {codec: pt} for H.264 (packetization-mode 1,
    constrained baseline), H.265, VP8 and Opus."""
    h264 = h265 = vp8 = opus = None
    rtpmap = dict(re.findall(r"a=rtpmap:(\d+) ([A-Za-z0-9]+)/", offer_sdp))
    fmtp = dict(re.findall(r"a=fmtp:(\d+) (.*)", offer_sdp))
    for pt, name in rtpmap.items():
        name = name.upper()
        if name == "OPUS" and opus is None:
            opus = int(pt)
        elif name == "VP8" and vp8 is None:
            vp8 = int(pt)
        elif name == "H265" and h265 is None:
            h265 = int(pt)
        elif name == "H264" and h264 is None:
            line = fmtp.get(pt, "")
            if "packetization-mode=1" in line and "42e01f" in line.lower():
                h264 = int(pt)
    return {"h264": h264, "h265": h265, "vp8": vp8, "opus": opus}


class Session:
    """One webrtcbin sending to one viewer."""

    def __init__(self, offer_sdp, codec, mode):
        pts = payload_types(offer_sdp)
        video_pt, opus_pt = pts[codec], pts["opus"]
        if video_pt is None or opus_pt is None:
            raise ValueError(f"the offer has no {codec} or no Opus")
        self.counter = 0
        self.frames = 0
        self.mode = mode
        self.answer = None
        self.done = threading.Event()
        if codec == "h264":
            encode = (
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=800 "
                "! video/x-h264,profile=constrained-baseline "
                "! rtph264pay config-interval=-1 aggregate-mode=zero-latency"
            )
            name = "H264"
        elif codec == "h265":
            encode = (
                # x265's keyframes after the first are CRA pictures, before which
                # rtph265pay 1.22 does not repeat VPS/SPS/PPS (config-interval=-1 acts
                # on IDR only): a viewer joining later would never get them. Live x265
                # senders repeat them in-band (repeat-headers), as this one does.
                "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=800 "
                "option-string=repeat-headers=1 "
                "! video/x-h265,profile=main "
                "! rtph265pay config-interval=-1 aggregate-mode=zero-latency"
            )
            name = "H265"
        else:
            encode = "vp8enc deadline=1 keyframe-max-dist=60 target-bitrate=800000 ! rtpvp8pay"
            name = "VP8"
        video_caps = (
            f"application/x-rtp,media=video,encoding-name={name},clock-rate=90000,payload={video_pt}"
        )
        audio_caps = (
            f"application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload={opus_pt}"
        )
        self.pipeline = Gst.parse_launch(
            "webrtcbin name=webrtc bundle-policy=max-bundle "
            f"appsrc name=video is-live=true format=time "
            f"caps=video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1 "
            f"! clocksync ! queue ! {encode} ! valve name=gate ! {video_caps} ! webrtc. "
            "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample "
            f"! opusenc ! rtpopuspay ! valve name=audiogate ! {audio_caps} ! webrtc. "
        )
        self.webrtc = self.pipeline.get_by_name("webrtc")
        # Held for the session: PyGObject drops a reference too many on a temporary.
        self.ice = self.webrtc.get_property("ice-agent")
        self.ice.emit("add-local-ip-address", "127.0.0.1")
        if mode in ("silent-video", "silent"):
            self.pipeline.get_by_name("gate").set_property("drop", True)
        if mode == "silent":
            self.pipeline.get_by_name("audiogate").set_property("drop", True)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.appsrc = self.pipeline.get_by_name("video")
        self.appsrc.connect("need-data", self.on_need_data)
        # Not PLAYING until the answer is made: like a server that builds its pipeline
        # per viewer, no caps (hence no SSRC) are known when webrtcbin answers, and the
        # answer signals no a=ssrc (the case RFC 8843 9.2 routes by payload type).
        self.pipeline.set_state(Gst.State.PAUSED)
        _, sdp = GstSdp.SDPMessage.new_from_text(offer_sdp)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp)
        promise = Gst.Promise.new_with_change_func(self.on_offer_set, None)
        self.webrtc.emit("set-remote-description", offer, promise)

    def on_need_data(self, src, _length):
        buffer = Gst.Buffer.new_wrapped(counter_picture(self.counter))
        buffer.duration = Gst.SECOND // FPS
        # Stamped by count; clocksync paces them to the pipeline clock.
        buffer.pts = self.frames * buffer.duration
        self.frames += 1
        self.counter = (self.counter + 1) & 0xFFFF
        with LOCK:
            STATS["video_frames_sent"] += 1
        src.emit("push-buffer", buffer)

    def on_offer_set(self, _promise, _data):
        promise = Gst.Promise.new_with_change_func(self.on_answer, None)
        self.webrtc.emit("create-answer", None, promise)

    def on_answer(self, promise, _data):
        reply = promise.get_reply()
        answer = reply.get_value("answer")
        self.webrtc.emit("set-local-description", answer, Gst.Promise.new())
        self.pipeline.set_state(Gst.State.PLAYING)

    def on_gathering(self, webrtc, _pspec):
        if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.answer = webrtc.get_property("local-description").sdp.as_text()
            self.done.set()

    def close(self):
        self.pipeline.set_state(Gst.State.NULL)


def make_handler(args, sessions):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, body=b"", headers=None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            with LOCK:
                STATS["posts"] += 1
            length = int(self.headers.get("Content-Length", "0"))
            offer = self.rfile.read(length).decode()
            try:
                session = Session(offer, args.codec, args.mode)
            except ValueError as error:
                self.reply(400, str(error).encode())
                return
            if not session.done.wait(10) or session.answer is None:
                session.close()
                self.reply(500, b"no answer")
                return
            if args.answer_out:
                with open(args.answer_out, "w") as out:
                    out.write(session.answer)
            resource = str(uuid.uuid4())
            sessions[resource] = session
            with LOCK:
                STATS["connections"] += 1
            self.reply(201, session.answer.encode(), {
                "Content-Type": "application/sdp",
                "Location": f"/whep/resource/{resource}",
            })

        def do_DELETE(self):
            session = sessions.pop(self.path.rsplit("/", 1)[-1], None)
            if session is None:
                self.reply(404)
                return
            session.close()
            with LOCK:
                STATS["deletes"] += 1
            self.reply(200)

        def do_GET(self):
            with LOCK:
                body = json.dumps(STATS).encode()
            self.reply(200, body, {"Content-Type": "application/json"})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--codec", choices=["h264", "h265", "vp8"], default="h264")
    parser.add_argument("--mode", choices=["normal", "silent-video", "silent"], default="normal")
    parser.add_argument("--answer-out")
    args = parser.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()
    sessions = {}
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, sessions))
    print(f"READY {args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        for session in sessions.values():
            session.close()


if __name__ == "__main__":
    main()
