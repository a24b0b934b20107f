// The Kotlin bindings against a real hub. Run by ffi/tests/it/kotlin.rs, which starts the hub
// and passes, in the environment:
//   STREAMHUB_RTMP_URL, STREAMHUB_WHEP_URL  base URLs; a test appends its stream's name
//   STREAMHUB_CHAT_URL                      the chat server
//   STREAMHUB_TOKEN_ALICE, _BOB             chat tokens (broadcaster, viewer) for every room
//   STREAMHUB_DEMO_FLV                      assets/demo.flv (180 video frames, 30 fps)
//   STREAMHUB_TMP                           a scratch directory
package dev.streamhub

import dev.streamhub.ffi.BroadcastOptions
import dev.streamhub.ffi.ChatException
import dev.streamhub.ffi.ChatRoom
import dev.streamhub.ffi.FfiConverterTypeStreamListener
import dev.streamhub.ffi.FileException
import dev.streamhub.ffi.FlvReader
import dev.streamhub.ffi.InternalException
import dev.streamhub.ffi.MediaException
import dev.streamhub.ffi.MediaType
import dev.streamhub.ffi.ReceivedFrame
import dev.streamhub.ffi.SessionException
import dev.streamhub.ffi.StreamEvent
import dev.streamhub.ffi.StreamSession
import dev.streamhub.ffi.StreamState
import dev.streamhub.ffi.Subscription
import dev.streamhub.ffi.VideoFormat
import dev.streamhub.ffi.VideoFrame
import dev.streamhub.ffi.WatchOptions
import dev.streamhub.ffi.debugPanic
import dev.streamhub.ffi.shutdown
import dev.streamhub.ffi.version
import java.io.File
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.AfterClass
import org.junit.Test

private fun env(name: String): String =
    System.getenv(name) ?: error("$name is not set: run cargo test -p streamhub-ffi --test kotlin")

private fun rtmp(stream: String) = env("STREAMHUB_RTMP_URL") + stream
private fun whep(stream: String) = env("STREAMHUB_WHEP_URL") + stream
private fun chat(stream: String, token: String) =
    ChatRoom(url = env("STREAMHUB_CHAT_URL"), room = stream, token = env(token))
private val demoFlv get() = env("STREAMHUB_DEMO_FLV")

/** Runs [block] with a deadline; coroutines it left running are cancelled at the end. */
private fun withDeadline(limit: Duration, block: suspend CoroutineScope.() -> Unit) {
    runBlocking {
        withTimeout(limit) {
            try {
                block()
            } finally {
                coroutineContext[Job]!!.cancelChildren()
            }
        }
    }
}

/** Polls [condition] every 20 ms until it holds; fails after [within]. */
private suspend fun eventually(what: String, within: Duration = 15.seconds, condition: () -> Boolean) {
    withTimeoutOrNull(within) {
        while (!condition()) delay(20)
    } ?: fail("timed out after $within waiting for $what")
}

/** A session's events, collected with [events] in the background. */
private class EventLog(scope: CoroutineScope, session: StreamSession) {
    val events = MutableStateFlow<List<StreamEvent>>(emptyList())
    val job = scope.launch(Dispatchers.Default) {
        session.events().collect { event -> events.update { it + event } }
    }

    /** The first event from index [from] on matching [match], waiting up to [within] for it. */
    suspend fun await(
        what: String,
        within: Duration = 15.seconds,
        from: Int = 0,
        match: (StreamEvent) -> Boolean,
    ): StreamEvent = withTimeoutOrNull(within) {
        events.first { list -> list.drop(from).any(match) }.drop(from).first(match)
    } ?: fail("no $what within $within; events: ${events.value}")

    /** The index of the first event matching [match] (which must have arrived). */
    fun indexOf(match: (StreamEvent) -> Boolean): Int = events.value.indexOfFirst(match)

    /** Waits until [count] events match. */
    suspend fun awaitCount(what: String, count: Int, within: Duration = 15.seconds, match: (StreamEvent) -> Boolean) {
        withTimeoutOrNull(within) { events.first { list -> list.count(match) >= count } }
            ?: fail("fewer than $count $what within $within")
    }
}

class StreamHubTest {
    companion object {
        /** Last: shutdown() stops the library, and later calls fail cleanly. */
        @AfterClass
        @JvmStatic
        fun shutdownTheLibrary() {
            shutdown(5_000u)
            assertFailsWith<SessionException.ShutDown> {
                StreamSession.broadcast(BroadcastOptions(url = rtmp("kt-after-shutdown")))
            }
        }
    }

    /** (a) The demo clip, broadcast with broadcastFlv, is watched with frames(). */
    @Test
    fun broadcastFlvIsWatchedAsH264() = withDeadline(90.seconds) {
        val name = "kt-demo"
        StreamSession.broadcast(BroadcastOptions(url = rtmp(name))).use { broadcaster ->
            val log = EventLog(this, broadcaster)
            broadcaster.awaitLive()
            // Queues larger than the defaults (ABI 2 options): the whole clip fits.
            val watchOptions = WatchOptions(url = whep(name), eventQueueCapacity = 512u, frameQueueCapacity = 1024u)
            StreamSession.watch(watchOptions).use { watcher ->
                val watcherLog = EventLog(this, watcher)
                val video = AtomicInteger()
                val audio = AtomicInteger()
                val codecs = ConcurrentHashMap.newKeySet<String>()
                val watching = launch(Dispatchers.Default) {
                    watcher.frames().collect { frame ->
                        if (frame.media == MediaType.VIDEO) {
                            video.incrementAndGet()
                            codecs += frame.codec
                        } else {
                            audio.incrementAndGet()
                        }
                    }
                }
                val sent = broadcaster.broadcastFlv(demoFlv, realtime = true)
                val stats = broadcaster.stop()
                assertEquals(180uL, stats.videoFrames, "video frames sent")
                assertEquals(0uL, stats.framesDropped)
                // The hub says goodbye to its viewers after the last frame: the watcher reads
                // it as the stream's end (not a lost connection), and by then every frame it
                // will get has arrived.
                val isLive = { e: StreamEvent -> e is StreamEvent.StateChanged && e.state == StreamState.Live }
                watcherLog.await("the watcher going live", match = isLive)
                watcherLog.await("the watcher seeing the stream end", 20.seconds, from = watcherLog.indexOf(isLive)) {
                    it is StreamEvent.StateChanged && it.state == StreamState.StreamEnded
                }
                assertTrue(
                    watcherLog.events.value.none { it is StreamEvent.StateChanged && it.state is StreamState.Reconnecting },
                    "the end of the stream is not a lost connection",
                )
                val watched = watcher.stop()
                withTimeout(10.seconds) { watching.join() }
                // The watch counters (ABI 2) reach Kotlin.
                assertTrue(watched.firstFrameMs != null, "no first frame time: $watched")
                assertEquals(0uL, watched.framesDropped, "dropped with room for 1024 frames")
                println(
                    "kotlin: watcher first frame ${watched.firstFrameMs} ms, ${watched.keyframeRequests} keyframe " +
                        "requests, ${watched.nacksSent} NACKs, ${watched.packetsRecovered} recovered, ${watched.freezes} freezes",
                )

                log.await("Live on the broadcaster's events") {
                    it is StreamEvent.StateChanged && it.state == StreamState.Live
                }
                log.await("Ended on the broadcaster's events") {
                    it is StreamEvent.StateChanged && it.state == StreamState.Ended
                }
                withTimeout(5.seconds) { log.job.join() } // events() completes after Ended
                println(
                    "kotlin: broadcastFlv sent $sent frames (${stats.videoFrames} video); watcher got " +
                        "${video.get()} video frames ${codecs} and ${audio.get()} audio frames",
                )
                assertTrue(video.get() >= 120, "only ${video.get()} video frames arrived")
                assertEquals(setOf("h264"), codecs.toSet())
            }
        }
    }

    /** (b) A watcher's chat message reaches the broadcaster's events(); ChatSent comes back. */
    @Test
    fun chatRoundTrip() = withDeadline(60.seconds) {
        val name = "kt-chat"
        StreamSession.broadcast(
            BroadcastOptions(url = rtmp(name), chat = chat(name, "STREAMHUB_TOKEN_ALICE")),
        ).use { broadcaster ->
            StreamSession.watch(
                WatchOptions(url = whep(name), chat = chat(name, "STREAMHUB_TOKEN_BOB"), stallTimeoutMs = 60_000u),
            ).use { watcher ->
                val broadcasterLog = EventLog(this, broadcaster)
                val watcherLog = EventLog(this, watcher)
                broadcasterLog.await("the broadcaster joining the room") { it is StreamEvent.ChatJoined }
                watcherLog.await("the watcher joining the room") { it is StreamEvent.ChatJoined }

                val text = "hello from Kotlin"
                val id = watcher.sendChat(text)
                val received = broadcasterLog.await("the message at the broadcaster") {
                    it is StreamEvent.Chat && it.message.text == text
                } as StreamEvent.Chat
                val sent = watcherLog.await("ChatSent at the watcher") {
                    it is StreamEvent.ChatSent && it.clientMsgId == id
                } as StreamEvent.ChatSent
                assertEquals("bob", received.message.userId)
                assertEquals(id, received.message.clientMsgId)
                assertTrue(received.message.seq > 0uL)
                assertEquals(received.message.seq, sent.seq)
                println("kotlin: chat round trip: \"$text\" from bob as seq ${sent.seq}, id $id")
                watcher.stop()
                broadcaster.stop()
            }
        }
    }

    /**
     * (b2) An unreachable primary ingest gives way to the backup, which the events name;
     * congestion thresholds are checked when the session is created.
     */
    @Test
    fun backupIngestAndCongestionOptions() = withDeadline(60.seconds) {
        assertFailsWith<SessionException.InvalidOptions> {
            StreamSession.broadcast(
                BroadcastOptions(url = rtmp("kt-order"), dropDisposableMs = 950u, dropUntilKeyframeMs = 900u),
            )
        }
        val options = BroadcastOptions(
            url = "rtmp://127.0.0.1:9/live/kt-nobody-here",
            backupUrls = listOf(rtmp("kt-backup")),
            attemptsPerIngest = 1u,
            dropDisposableMs = 400u,
            dropUntilKeyframeMs = 600u,
            dropGopsMs = 800u,
        )
        StreamSession.broadcast(options).use { broadcaster ->
            val log = EventLog(this, broadcaster)
            broadcaster.awaitLive()
            val live = log.await("IngestLive on the backup") { it is StreamEvent.IngestLive } as StreamEvent.IngestLive
            assertEquals(1u, live.index)
            assertTrue(!live.url.contains("kt-backup"), "the stream key is masked: ${live.url}")
            assertEquals(1u, broadcaster.stats().ingest)
            println("kotlin: live on backup ${live.index} (${live.url}) after the primary failed")
            broadcaster.stop()
        }
    }

    /** (c) Library errors arrive as the Kotlin exceptions of their area. */
    @Test
    fun errorsAreKotlinExceptions() = withDeadline(30.seconds) {
        assertFailsWith<SessionException.InvalidOptions> {
            StreamSession.broadcast(BroadcastOptions(url = "not a url"))
        }
        assertFailsWith<SessionException.InvalidOptions> {
            StreamSession.watch(WatchOptions(url = "rtmp://127.0.0.1/live/not-whep"))
        }
        StreamSession.watch(WatchOptions(url = whep("kt-errors"))).use { watcher ->
            val frame = VideoFrame(byteArrayOf(0, 0, 0, 1, 0x65, 0x11), VideoFormat.ANNEX_B, true, 0, 0)
            assertFailsWith<MediaException.WrongKind> { watcher.sendVideo(frame) }
            assertFailsWith<ChatException.Unavailable> { watcher.sendChat("nobody hears this") }
            watcher.stop()
        }
        StreamSession.broadcast(BroadcastOptions(url = rtmp("kt-errors"))).use { broadcaster ->
            assertFailsWith<MediaException.WrongKind> { broadcaster.nextFrame() }
            assertFailsWith<MediaException.InvalidMedia> { broadcaster.setVideoConfig(byteArrayOf(1, 2, 3)) }
            broadcaster.stop()
        }

        val tmp = File(env("STREAMHUB_TMP"))
        assertFailsWith<FileException.Unreadable> { FlvReader.open(File(tmp, "missing.flv").path) }
        val truncated = File(tmp, "truncated.flv")
        truncated.writeBytes(File(demoFlv).readBytes().copyOf(50_000))
        FlvReader.open(truncated.path).use { reader ->
            var samples = 0
            val error = assertFailsWith<FileException.Unreadable> {
                while (reader.nextSample() != null) samples++
            }
            assertTrue(samples > 10, "the samples before the cut were read ($samples)")
            println("kotlin: truncated FLV: $samples samples, then ${error.message}")
        }
    }

    /** (d) A panic inside the library is an InternalException; the JVM carries on. */
    @Test
    fun libraryPanicIsAnExceptionAndTheJvmCarriesOn() {
        val error = assertFailsWith<InternalException> { debugPanic("x") }
        assertTrue(error.message.orEmpty().contains("x"), "message: ${error.message}")
        assertTrue(version().isNotEmpty())
        assertFailsWith<InternalException> { debugPanic("again") }
        FlvReader.open(demoFlv).use { assertNotNull(it.nextSample()) }
        StreamSession.watch(WatchOptions(url = whep("kt-after-panic"))).use { watcher ->
            assertTrue(watcher.stats().uptimeMs < 60_000uL)
            runBlocking { withTimeout(15.seconds) { watcher.stop() } }
        }
    }

    /**
     * (e) Cancelling a collector of events() cancels its subscription in the library, and
     * cancelling a coroutine suspended in nextFrame() leaves the session working.
     */
    @Test
    fun cancellationReachesTheLibrary() = withDeadline(90.seconds) {
        val name = "kt-cancel"
        StreamSession.broadcast(BroadcastOptions(url = rtmp(name))).use { broadcaster ->
            broadcaster.awaitLive()
            // Connected before any media: reads wait. Stats every 50 ms keep events coming.
            val options = WatchOptions(url = whep(name), statsIntervalMs = 50u, stallTimeoutMs = 60_000u)
            StreamSession.watch(options).use { watcher ->
                // 1. events(): collect a few Stats, cancel the collector.
                val listeners = FfiConverterTypeStreamListener.handleMap
                val before = listeners.size
                val delivered = AtomicReference<AtomicLong>()
                // Held here so that only an explicit cancel, not the garbage collector,
                // can end the subscription.
                val subscription = AtomicReference<Subscription>()
                val stats = AtomicInteger()
                val collecting = launch(Dispatchers.Default) {
                    watcher.subscribedEvents(DEFAULT_EVENT_BUFFER) { listener, subscribed ->
                        delivered.set(listener.delivered)
                        subscription.set(subscribed)
                    }.collect { if (it is StreamEvent.Stats) stats.incrementAndGet() }
                }
                eventually("3 Stats events") { stats.get() >= 3 }
                collecting.cancelAndJoin()
                // The subscription was cancelled and released, not left to the garbage
                // collector: the library freed the listener's handle at once.
                eventually("the library freeing the cancelled listener", 5.seconds) { listeners.size <= before }
                // Events go out one at a time on one thread: once a later subscriber got one,
                // no delivery to the cancelled listener is under way.
                val other = EventLog(this, watcher)
                other.awaitCount("a first event for a new subscriber", 1) { true }
                val atCancel = delivered.get().get()
                other.awaitCount("10 further Stats events", 10) { it is StreamEvent.Stats }
                assertEquals(atCancel, delivered.get().get(), "events reached a cancelled subscription")
                println("kotlin: cancelled events() subscription got $atCancel events; 10 more Stats went elsewhere")
                assertTrue(subscription.get().uniffiIsDestroyed, "the flow closed its Subscription")

                // 2. nextFrame(): cancel reads suspended for want of frames.
                assertNull(withTimeoutOrNull(300.milliseconds) { watcher.nextFrame() })
                val reading = launch(Dispatchers.Default) { watcher.nextFrame() }
                delay(200)
                assertTrue(reading.isActive, "nextFrame() returned without frames")
                reading.cancelAndJoin()

                // The session still works: frames flow once the broadcaster sends some.
                val publishing = launch(Dispatchers.Default) { broadcaster.broadcastFlv(demoFlv) }
                val frames: List<ReceivedFrame> = withTimeout(30.seconds) { watcher.frames().take(60).toList() }
                assertEquals(60, frames.size)
                assertTrue(frames.any { it.media == MediaType.VIDEO && it.codec == "h264" })
                assertEquals(StreamState.Live, watcher.state())
                // Cancelling a broadcast mid-file (suspended in sendVideo or in its pacing).
                publishing.cancelAndJoin()
                assertEquals(StreamState.Live, broadcaster.state())
                broadcaster.stop()
                watcher.stop()
                val rest = withTimeout(10.seconds) { watcher.frames().toList() }
                val final = watcher.stats()
                val lost = (final.videoFrames + final.audioFrames).toLong() - (frames.size + rest.size)
                println(
                    "kotlin: after 2 cancelled nextFrame() calls the watcher read ${frames.size + rest.size} " +
                        "frames; the session delivered ${final.videoFrames + final.audioFrames} ($lost not read)",
                )
                // A cancelled nextFrame() loses nothing: every frame delivered was read.
                assertEquals(0L, lost, "frames lost to cancelled nextFrame() calls")
            }
        }
    }
}
