"""A WHEP viewer on aiortc that assembles frames but does not decode them, for comparing
CPU cost and time to first frame with `streamhub play`.

Usage: aiortc_whep_receiver.py URL --duration SECONDS
Prints one JSON line: video_frames, audio_frames, first_frame_ms, and the freezes of the
video (W3C definition, as streamhub counts them: a frame more than max(3 x the average
interval, average + 150 ms) after the previous one) with their total length.
"""

import argparse
import asyncio
import json
import time

import aioice.ice
import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc import rtcrtpreceiver

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

COUNTS = {"video": 0, "audio": 0}
STARTED = time.monotonic()
FIRST_FRAME = [None]
FREEZES = {"count": 0, "frozen_ms": 0.0, "last": None, "average": None}


def count_freeze(now):
    last, average = FREEZES["last"], FREEZES["average"]
    FREEZES["last"] = now
    if last is None:
        return
    interval = now - last
    if average is None:
        FREEZES["average"] = interval
        return
    if interval > max(3 * average, average + 0.150):
        FREEZES["count"] += 1
        FREEZES["frozen_ms"] += interval * 1000
    else:
        FREEZES["average"] = (average * 29 + interval) / 30


class CountingDecoder:
    """Stands in for aiortc's decoders: counts the assembled encoded frames, decodes nothing."""

    def __init__(self, kind):
        self.kind = kind

    def decode(self, encoded_frame):
        COUNTS[self.kind] += 1
        if self.kind == "video":
            count_freeze(time.monotonic())
        if self.kind == "video" and FIRST_FRAME[0] is None:
            FIRST_FRAME[0] = time.monotonic() - STARTED
        return []


rtcrtpreceiver.get_decoder = lambda codec: CountingDecoder(codec.mimeType.split("/")[0].lower())


async def main(url, duration):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201, response.status
            answer = await response.text()
            resource = str(response.url.join(aiohttp.client.URL(response.headers["Location"])))
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(duration)
        async with http.delete(resource):
            pass
    await pc.close()
    print(json.dumps({
        "video_frames": COUNTS["video"],
        "audio_frames": COUNTS["audio"],
        "first_frame_ms": None if FIRST_FRAME[0] is None else round(FIRST_FRAME[0] * 1000),
        "freezes": FREEZES["count"],
        "frozen_ms": round(FREEZES["frozen_ms"]),
    }), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.duration))
