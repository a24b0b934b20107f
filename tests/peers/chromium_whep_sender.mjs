// A WHEP server whose sender is Chromium's libwebrtc: a small relay that hands each
// POSTed offer to a page in Debian's chromium (driven by playwright-core, never a
// downloaded browser) and returns the page's answer. The page sends a canvas
// captureStream — a 16-bit frame counter drawn as blocks, and moving shapes — and a
// WebAudio tone.
//
// Frame counter, as in aiortc_whep_sender.py: 320x240, the top 16x256 pixels hold 16
// blocks of 16x16 holding the counter's Gray code, bit 15 first; white is 1, black is 0. One canvas frame is drawn and
// captured (requestFrame) per counter value, every 1/30 s.
//
// Usage: node chromium_whep_sender.mjs --port P [--host A] --codec {h264,vp8,vp9,av1}
//            [--no-candidates] [--send-codec C]
//   --host A          listen on A (default 127.0.0.1)
//   --no-candidates   strip every a=candidate from the answer (the sender is then only
//                     reachable peer-reflexively)
//   --send-codec C    answer with the --codec first but send C (libwebrtc follows the
//                     offer's order, so the answer's first codec is not always the one
//                     that arrives)
//   --keep-offer-order  hand the page the offer as it came: Chromium then answers
//                     --codec only but sends the offer's first codec (a codec it did not
//                     answer)
// Prints "READY <port>" when listening. GET /stats returns counters as JSON (with
// answer_candidates: the a=candidate lines of the last answer).
// Run with NODE_PATH pointing at tests/browser/node_modules (the tests do).

import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require(require.resolve('playwright-core', {
  paths: [join(import.meta.dirname, '../browser/node_modules'), ...(process.env.NODE_PATH || '').split(':')],
}));

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    codec: { type: 'string', default: 'h264' },
    'send-codec': { type: 'string' },
    'no-candidates': { type: 'boolean', default: false },
    'keep-offer-order': { type: 'boolean', default: false },
  },
});

const stats = { posts: 0, deletes: 0, connections: 0, answer_candidates: 0 };
const profile = mkdtempSync(join(tmpdir(), 'streamhub-chromium-sender-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    // WebRTC on loopback: gather 127.0.0.1 and show it as it is (no mDNS .local names).
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
});
const page = context.pages()[0] || (await context.newPage());
page.on('console', (m) => console.error(`[page] ${m.text()}`));
await page.setContent('<canvas id="c" width="320" height="240"></canvas>');
await page.evaluate(() => {
  const canvas = document.getElementById('c');
  const g = canvas.getContext('2d');
  const stream = canvas.captureStream(0);
  const [video] = stream.getVideoTracks();
  const audioContext = new AudioContext({ sampleRate: 48000 });
  const tone = audioContext.createOscillator();
  tone.frequency.value = 440;
  const destination = audioContext.createMediaStreamDestination();
  tone.connect(destination);
  tone.start();
  const [audio] = destination.stream.getAudioTracks();
  let counter = 0;
  const draw = () => {
    g.fillStyle = 'rgb(64,64,64)';
    g.fillRect(0, 0, 320, 240);
    g.fillStyle = `hsl(${(counter * 7) % 360},80%,50%)`;
    g.beginPath();
    g.arc(40 + ((counter * 4) % 240), 140, 30, 0, 2 * Math.PI);
    g.fill();
    g.fillRect((counter * 3) % 300, 200, 20, 20);
    const gray = counter ^ (counter >> 1);
    for (let bit = 0; bit < 16; bit++) {
      g.fillStyle = (gray >> (15 - bit)) & 1 ? '#fff' : '#000';
      g.fillRect(bit * 16, 0, 16, 16);
    }
    video.requestFrame();
    counter = (counter + 1) & 0xffff;
  };
  setInterval(draw, 1000 / 30);
  const sessions = new Map();
  window.sender = {
    async answer(id, offer, codec, sendCodec, waitForCandidates) {
      const pc = new RTCPeerConnection({ iceServers: [] });
      sessions.set(id, pc);
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track.kind;
        transceiver.direction = 'sendonly';
        await transceiver.sender.replaceTrack(kind === 'video' ? video : audio);
        if (kind === 'video') {
          const codecs = RTCRtpSender.getCapabilities('video').codecs;
          const named = (name) => codecs.filter((c) => c.mimeType.toLowerCase() === `video/${name}`);
          const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
          const first = named(codec);
          const other = sendCodec ? named(sendCodec) : [];
          transceiver.setCodecPreferences([...first, ...other, ...rtx]);
          const parameters = transceiver.sender.getParameters();
          parameters.degradationPreference = 'maintain-resolution';
          await transceiver.sender.setParameters(parameters);
        }
      }
      await pc.setLocalDescription(await pc.createAnswer());
      // With candidates to wait for, the answer carries them all (no trickle); on a
      // host with only loopback Chromium gathers none, and answers at once.
      if (!waitForCandidates) return pc.localDescription.sdp;
      if (pc.iceGatheringState !== 'complete') {
        await new Promise((resolve) => {
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') resolve();
          });
        });
      }
      return pc.localDescription.sdp;
    },
    close(id) {
      const pc = sessions.get(id);
      sessions.delete(id);
      if (pc) pc.close();
      return Boolean(pc);
    },
  };
});

// libwebrtc picks what it sends from the offer's order, even a codec its answer left
// out: the offer given to the page puts the codec to send first (--send-codec, else
// --codec), unless --keep-offer-order.
function reorderOffer(offer, codec) {
  const lines = offer.split('\r\n');
  const rtpmap = new Map();
  for (const line of lines) {
    const m = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
    if (m) rtpmap.set(m[1], m[2].toLowerCase());
  }
  return lines
    .map((line) => {
      if (!line.startsWith('m=video')) return line;
      const [m, port, proto, ...pts] = line.split(' ');
      const wanted = pts.filter((pt) => rtpmap.get(pt) === codec);
      return [m, port, proto, ...wanted, ...pts.filter((pt) => !wanted.includes(pt))].join(' ');
    })
    .join('\r\n');
}

let next = 0;
const server = createServer(async (request, response) => {
  const body = [];
  for await (const chunk of request) body.push(chunk);
  const reply = (status, text = '', headers = {}) => {
    response.writeHead(status, { 'Content-Length': Buffer.byteLength(text), ...headers });
    response.end(text);
  };
  try {
    if (request.method === 'POST' && request.url.startsWith('/whep/')) {
      stats.posts += 1;
      let offer = Buffer.concat(body).toString();
      if (!opts['keep-offer-order']) offer = reorderOffer(offer, opts['send-codec'] ?? opts.codec);
      const id = String(next++);
      let answer = await page.evaluate(
        ([id, offer, codec, sendCodec, wait]) => window.sender.answer(id, offer, codec, sendCodec, wait),
        [id, offer, opts.codec, opts['send-codec'] ?? null, !opts['no-candidates']],
      );
      if (opts['no-candidates']) {
        answer = answer.split('\r\n').filter((l) => !l.startsWith('a=candidate')).join('\r\n');
      }
      stats.connections += 1;
      stats.answer_candidates = 0;
      for (const line of answer.split('\r\n')) {
        if (line.startsWith('a=candidate')) {
          stats.answer_candidates += 1;
          console.error(`answer ${line}`);
        }
      }
      return reply(201, answer, {
        'Content-Type': 'application/sdp',
        Location: `/whep/resource/${id}`,
      });
    }
    if (request.method === 'DELETE' && request.url.startsWith('/whep/resource/')) {
      const found = await page.evaluate((id) => window.sender.close(id), request.url.split('/').pop());
      if (!found) return reply(404);
      stats.deletes += 1;
      return reply(200);
    }
    if (request.method === 'GET' && request.url === '/stats') {
      return reply(200, JSON.stringify(stats), { 'Content-Type': 'application/json' });
    }
    return reply(404);
  } catch (error) {
    console.error(`chromium_whep_sender: ${error.stack}`);
    return reply(500, String(error.message));
  }
});

const shutdown = async () => {
  server.close();
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
server.listen(Number(opts.port), opts.host, () => console.log(`READY ${opts.port}`));
