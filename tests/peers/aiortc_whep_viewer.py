"""A WHEP viewer on aiortc (an independent WebRTC stack) that DECODES what it receives:
video through aiortc's H.264/VP8 decoders (libavcodec), audio through its Opus decoder.

Usage: aiortc_whep_viewer.py URL --duration SECONDS
Prints one JSON line: video_frames, audio_frames (decoded), first_frame_ms (from the POST),
width, height, video_codec, audio_codec, audio_sample_rate, audio_channels,
watched_ms (from the first video frame to the end), status, resource.
Exits 1 with a message on stderr when the hub refuses the offer.
"""

import argparse
import asyncio
import json
import sys
import time

import aioice.ice
import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc import rtcrtpreceiver
from aiortc.mediastreams import MediaStreamError

# aioice skips loopback when gathering; loopback is all these tests may use.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

# The codec of the payload type that actually arrives (aiortc makes a decoder for it).
CODECS = {}
_make_decoder = rtcrtpreceiver.get_decoder


def recording_decoder(codec):
    kind, name = codec.mimeType.lower().split("/")
    CODECS[kind] = name
    return _make_decoder(codec)


rtcrtpreceiver.get_decoder = recording_decoder


class Counts:
    def __init__(self):
        self.started = time.monotonic()
        self.video = 0
        self.audio = 0
        self.first_video = None
        self.width = None
        self.height = None
        self.sample_rate = None
        self.channels = None


async def consume(track, counts):
    """Pulls decoded frames (av.VideoFrame / av.AudioFrame) until the track ends."""
    try:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                if counts.first_video is None:
                    counts.first_video = time.monotonic()
                    counts.width, counts.height = frame.width, frame.height
                counts.video += 1
            else:
                counts.audio += 1
                counts.sample_rate = frame.sample_rate
                counts.channels = len(frame.layout.channels)
    except MediaStreamError:
        pass


async def main(url, duration):
    counts = Counts()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track, counts))))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    # aiortc gathers every candidate before setLocalDescription returns: a complete offer.
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            answer = await response.text()
            if response.status != 201:
                print(f"error: POST {url} answered {response.status}: {answer}", file=sys.stderr)
                await pc.close()
                sys.exit(1)
            location = response.headers.get("Location")
            if not location:
                print("error: 201 without a Location", file=sys.stderr)
                sys.exit(1)
            resource = str(response.url.join(aiohttp.client.URL(location)))
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(duration)
        ended = time.monotonic()
        async with http.delete(resource) as response:
            delete_status = response.status
    await pc.close()
    for task in tasks:
        task.cancel()
    first = counts.first_video
    print(json.dumps({
        "video_frames": counts.video,
        "audio_frames": counts.audio,
        "first_frame_ms": None if first is None else round((first - counts.started) * 1000),
        "watched_ms": None if first is None else round((ended - first) * 1000),
        "width": counts.width,
        "height": counts.height,
        "video_codec": CODECS.get("video"),
        "audio_codec": CODECS.get("audio"),
        "audio_sample_rate": counts.sample_rate,
        "audio_channels": counts.channels,
        "resource": resource,
        "delete_status": delete_status,
    }), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.duration))
