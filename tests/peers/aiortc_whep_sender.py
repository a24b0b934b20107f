"""A WHEP server on aiortc (an independent WebRTC stack), for testing StreamHub's player.

Serves POST /whep/<name> with a live video track (H.264 or VP8) whose frames carry a
16-bit frame counter, plus an Opus tone. Listens on 127.0.0.1 only.

Frame counter: the top 16x256 pixels hold 16 blocks of 16x16 pixels, the counter's
Gray code (counter ^ counter >> 1), bit 15 first; a white block (255) is 1, a black
block (0) is 0. Consecutive counters differ in one block, so an encoder that is slow
to redraw a block shows the previous counter, never an unrelated one. Decode a gray
frame by the mean of each block's centre against 128, then undo the Gray code.

Usage: aiortc_whep_sender.py --port P --codec {h264,vp8} [--token T]
           [--mode {normal,401,404,500,bad-sdp,hang,redirect,busy-once}]
           [--drop-first-frames N] [--change-ssrc-after N]
Prints "READY <port>" when listening. GET /stats returns counters as JSON.
"""

import argparse
import asyncio
import fractions
import json
import uuid

import aioice.ice
import numpy as np
from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs import h264, vpx
from aiortc.contrib.media import MediaPlayer
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.utils import random32
from av import VideoFrame

# aioice skips loopback when gathering; loopback is all these tests may use.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

STATS = {
    "posts": 0,
    "deletes": 0,
    "patches": 0,
    "keyframe_requests": 0,
    "video_frames_sent": 0,
    "connections": 0,
}
WIDTH, HEIGHT = 320, 240


def count_keyframe_requests():
    original = RTCRtpSender._send_keyframe

    def counted(self):
        STATS["keyframe_requests"] += 1
        original(self)

    RTCRtpSender._send_keyframe = counted


def drop_first_encoded_frames(count):
    """Encode but do not send the first `count` frames of every encoder: the viewer then
    starts mid-GOP and only a keyframe request (PLI/FIR) gets it a picture quickly."""
    for encoder_class in (h264.H264Encoder, vpx.Vp8Encoder):
        original = encoder_class.encode

        def encode(self, frame, force_keyframe=False, _original=original):
            payloads, timestamp = _original(self, frame, force_keyframe)
            self._streamhub_encoded = getattr(self, "_streamhub_encoded", 0) + 1
            if self._streamhub_encoded <= count:
                return [], timestamp
            return payloads, timestamp

        encoder_class.encode = encode


class CounterTrack(VideoStreamTrack):
    """Frames of a moving gradient with the frame counter in the top row. With
    `change_ssrc_after`, the video sender takes new SSRCs (media and RTX) after that many
    frames and starts again at a keyframe, as a sender whose encoder restarts does: its
    answer still names the old SSRCs."""

    def __init__(self, change_ssrc_after=0):
        super().__init__()
        self.counter = 0
        self.change_ssrc_after = change_ssrc_after
        self.sender = None

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        image = np.full((HEIGHT, WIDTH, 3), 64, np.uint8)
        image[32:, :, 1] = (np.arange(WIDTH) + self.counter * 4) % 256
        gray = self.counter ^ (self.counter >> 1)
        for bit in range(16):
            on = (gray >> (15 - bit)) & 1
            image[0:16, bit * 16 : bit * 16 + 16, :] = 255 if on else 0
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        if self.sender is not None and self.counter == self.change_ssrc_after:
            self.sender._ssrc = random32()
            self.sender._rtx_ssrc = random32()
            # Feedback (NACK, PLI) for the new SSRC reaches this sender too.
            self.sender.transport._rtp_router.register_sender(self.sender, self.sender._ssrc)
            # The encoder restarts at a keyframe (set directly: not a keyframe request).
            self.sender._RTCRtpSender__force_keyframe = True
            STATS["ssrc_changed_at"] = self.counter
            STATS["new_ssrc"] = self.sender._ssrc
        self.counter = (self.counter + 1) & 0xFFFF
        STATS["video_frames_sent"] += 1
        return frame


def problem(status, title):
    body = json.dumps({"type": "about:blank", "title": title, "status": status})
    return web.Response(status=status, text=body, content_type="application/problem+json")


def make_app(args):
    sessions = {}

    async def post(request):
        STATS["posts"] += 1
        if args.mode == "redirect" and request.match_info["name"] != "moved":
            # Temporary redirect: the client must POST the same offer again there.
            raise web.HTTPTemporaryRedirect("/whep/moved")
        if args.mode == "busy-once" and STATS["posts"] == 1:
            return web.Response(status=503, text="warming up", headers={"Retry-After": "1"})
        if args.mode in ("401", "404", "500"):
            return problem(int(args.mode), f"test mode {args.mode}")
        if args.mode == "hang":
            await asyncio.sleep(3600)
        if args.token and request.headers.get("Authorization") != f"Bearer {args.token}":
            return problem(401, "missing or wrong bearer token")
        if request.content_type != "application/sdp":
            return problem(415, "expected application/sdp")
        offer = await request.text()
        resource = str(uuid.uuid4())
        location = f"/whep/resource/{resource}"
        if args.mode == "bad-sdp":
            return web.Response(status=201, text="this is not SDP\n", headers={
                "Location": location, "Content-Type": "application/sdp"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = CounterTrack(args.change_ssrc_after)
        video = pc.addTransceiver(track, direction="sendonly")
        if args.change_ssrc_after:
            track.sender = video.sender
        capabilities = RTCRtpSender.getCapabilities("video").codecs
        # The codec under test, and RTX so that NACKs are answered by retransmission
        # on its own stream (RFC 4588), as libwebrtc does.
        video.setCodecPreferences(
            [c for c in capabilities if c.mimeType.lower() in (f"video/{args.codec}", "video/rtx")]
        )
        tone = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
        pc.addTransceiver(tone.audio, direction="sendonly")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:  # a malformed offer
            await pc.close()
            return problem(400, f"bad offer: {error}")
        sessions[resource] = (pc, tone)
        STATS["connections"] += 1
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            headers={
                "Location": location,
                "Content-Type": "application/sdp",
                "ETag": f'"{resource}"',
                "Accept-Patch": "application/trickle-ice-sdpfrag",
                "Link": '<stun:127.0.0.1:3478>; rel="ice-server"',
            },
        )

    async def patch(request):
        STATS["patches"] += 1
        if request.match_info["id"] not in sessions:
            return problem(404, "no such session")
        return web.Response(status=204)

    async def delete(request):
        session = sessions.pop(request.match_info["id"], None)
        if session is None:
            return problem(404, "no such session")
        STATS["deletes"] += 1
        pc, tone = session
        await pc.close()
        if tone.audio:
            tone.audio.stop()
        return web.Response(status=200)

    async def stats(_request):
        return web.json_response(STATS)

    app = web.Application()
    app.router.add_post("/whep/{name}", post)
    app.router.add_patch("/whep/resource/{id}", patch)
    app.router.add_delete("/whep/resource/{id}", delete)
    app.router.add_get("/stats", stats)

    async def close_all(_app):
        for pc, tone in sessions.values():
            await pc.close()
            if tone.audio:
                tone.audio.stop()

    app.on_shutdown.append(close_all)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--codec", choices=["h264", "vp8"], default="h264")
    parser.add_argument("--token")
    parser.add_argument("--mode", default="normal",
                        choices=["normal", "401", "404", "500", "bad-sdp", "hang",
                                 "redirect", "busy-once"])
    parser.add_argument("--drop-first-frames", type=int, default=0)
    parser.add_argument("--change-ssrc-after", type=int, default=0)
    args = parser.parse_args()
    count_keyframe_requests()
    if args.drop_first_frames:
        drop_first_encoded_frames(args.drop_first_frames)
    web.run_app(
        make_app(args),
        host="127.0.0.1",
        port=args.port,
        print=lambda *_: print(f"READY {args.port}", flush=True),
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
