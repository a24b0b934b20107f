"""A WHEP viewer on aiortc that assembles frames but does not decode them, for comparing
CPU cost and time to first frame with `streamhub play`.

Usage: aiortc_whep_receiver.py URL --duration SECONDS
Prints one JSON line: video_frames, audio_frames, first_frame_ms.
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


class CountingDecoder:
    """Stands in for aiortc's decoders: counts the assembled encoded frames, decodes nothing."""

    def __init__(self, kind):
        self.kind = kind

    def decode(self, encoded_frame):
        COUNTS[self.kind] += 1
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
    }), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.duration))
