// Drives Debian's chromium (never a downloaded browser) through the hub's development page:
// pick a stream, watch it over WHEP until video frames are decoded and audio packets arrive,
// send a chat message from the page's text box and see it come back in the page's log,
// take a screenshot, and print one JSON line with the figures.
//
// Usage:
//   node dev_page.mjs --page URL --stream NAME [--message TEXT] [--screenshot PATH]
//                     [--min-frames 30] [--timeout-ms 30000]
//   node dev_page.mjs --page 'URL?room=R&token=T&chat=ws://…' --chat-only …   (no video)
//
// Exit status 0 with the JSON line on stdout when every check passed; otherwise 1 with the
// reason (and the page's console) on stderr.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';

const { values: opts } = parseArgs({
  options: {
    page: { type: 'string' },
    stream: { type: 'string' },
    message: { type: 'string' },
    screenshot: { type: 'string' },
    'min-frames': { type: 'string', default: '30' },
    'timeout-ms': { type: 'string', default: '30000' },
    'chat-only': { type: 'boolean', default: false },
  },
});

function fail(reason) {
  console.error(`dev_page: ${reason}`);
  process.exit(1);
}

if (!opts.page) fail('--page URL is required');
if (!opts['chat-only'] && !opts.stream) fail('--stream NAME is required (or --chat-only)');
if (!existsSync(CHROMIUM)) {
  fail(`${CHROMIUM} not found: install Debian's chromium (the "browser tests" step of .ci/run: apt-get install -y chromium)`);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (error) {
  fail(`playwright-core is not installed (the "browser tests" step of .ci/run: npm ci --prefix tests/browser): ${error.message}`);
}

const minFrames = Number(opts['min-frames']);
const deadline = Date.now() + Number(opts['timeout-ms']);
const remaining = () => Math.max(1, deadline - Date.now());
const message = opts.message || `hello from chromium <b>not bold</b> & ${Date.now()}`;

// A fresh profile for every run, removed at the end.
const profile = mkdtempSync(join(tmpdir(), 'streamhub-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    // WebRTC on loopback: gather 127.0.0.1 and show it as it is (no mDNS .local names).
    '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
});

const consoleLines = [];
const failures = [];
let page;
try {
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => {
    consoleLines.push(`[pageerror] ${e.message}`);
    failures.push(`uncaught error in the page: ${e.message}`);
  });
  const result = await run(page);
  if (failures.length) throw new Error(failures.join('; '));
  console.log(JSON.stringify(result));
} catch (error) {
  console.error(`dev_page: ${error.message}`);
  if (page) {
    const log = await page.evaluate(() => window.streamhub?.chatLog()).catch(() => null);
    const status = await page.textContent('#status').catch(() => null);
    console.error(`status line: ${status}`);
    console.error(`chat log: ${JSON.stringify(log)}`);
    if (opts.screenshot) await shoot(page).catch(() => {});
  }
  console.error(consoleLines.join('\n'));
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

async function run(page) {
  const started = Date.now();
  await page.goto(opts.page, { timeout: remaining() });
  await page.waitForFunction(() => window.streamhub !== undefined, null, { timeout: remaining() });
  const figures = { page: opts.page, stream: opts.stream ?? null };

  if (!opts['chat-only']) {
    // 1. The stream appears in the list (polled every 2 s); pick it like a person would.
    const button = page.locator(`#streams button[data-stream="${cssString(opts.stream)}"]`);
    await button.waitFor({ timeout: remaining() });
    figures.listed = await button.innerText();
    const selectedAt = Date.now();
    await button.click();
    // 2. Watch until enough frames are decoded and audio arrives.
    let stats;
    for (;;) {
      stats = await page.evaluate(() => window.streamhub.stats());
      if (stats.framesDecoded > minFrames && stats.audioPacketsReceived > 0) break;
      if (Date.now() > deadline) {
        throw new Error(`deadline: ${stats.framesDecoded} frames decoded, ${stats.audioPacketsReceived} audio packets, ` +
          `connection ${stats.connectionState}${stats.error ? `, error ${stats.error}` : ''}`);
      }
      await sleep(250);
    }
    figures.msToFrames = Date.now() - selectedAt;
    await sleep(1500); // let the status line show a fps and bitrate
    Object.assign(figures, await page.evaluate(() => window.streamhub.stats()));
    figures.status = await page.textContent('#status');
    const video = await page.evaluate(() => {
      const v = document.getElementById('video');
      return { width: v.videoWidth, height: v.videoHeight, paused: v.paused, muted: v.muted, time: v.currentTime };
    });
    figures.videoElement = video;
    if (video.paused || video.width === 0) throw new Error(`the <video> is not playing: ${JSON.stringify(video)}`);
  }

  // 3. Chat: wait until joined, type a message, press Enter, see it in the log.
  await page.waitForFunction(() => !document.getElementById('chat-input').disabled &&
    window.streamhub.chatLog().some((e) => e.type === 'system' && e.text.startsWith('joined')), null, { timeout: remaining() });
  await page.fill('#chat-input', message);
  await page.press('#chat-input', 'Enter');
  await page.waitForFunction((text) => window.streamhub.chatLog().some((e) => e.type === 'message' && e.text === text),
    message, { timeout: remaining() });
  const entry = (await page.evaluate(() => window.streamhub.chatLog())).find((e) => e.type === 'message' && e.text === message);
  figures.chat = { text: entry.text, seq: entry.seq, user: entry.user, mine: entry.mine };
  // The text was shown as text: no element made of it.
  const logText = await page.textContent('#chat-log');
  if (!logText.includes(message)) throw new Error('the message is in chatLog() but not shown in #chat-log');
  if ((await page.locator('#chat-log b').count()) > 0) throw new Error('chat text was rendered as HTML');
  // The programmatic API sends too, and resolves with the server's ack.
  const ack = await page.evaluate((text) => window.streamhub.sendChat(text), `${message} (api)`);
  if (!(ack.seq > entry.seq)) throw new Error(`sendChat ack ${JSON.stringify(ack)}`);
  figures.chat.apiSeq = ack.seq;
  figures.viewersText = await page.textContent('#chat-viewers');

  if (opts.screenshot) figures.screenshot = await shoot(page);
  figures.elapsedMs = Date.now() - started;

  if (!opts['chat-only']) {
    // 4. Leave: the page DELETEs its WHEP session.
    await page.click('#leave');
    await page.waitForFunction(() => document.getElementById('watching').textContent === 'nothing', null, { timeout: remaining() });
  }
  return figures;
}

async function shoot(page) {
  mkdirSync(dirname(opts.screenshot), { recursive: true });
  await page.screenshot({ path: opts.screenshot });
  return opts.screenshot;
}

function cssString(text) {
  return text.replace(/["\\]/g, '\\$&');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
