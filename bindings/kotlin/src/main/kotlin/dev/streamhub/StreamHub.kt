// A small Kotlin layer over the generated bindings (package dev.streamhub.ffi): events
// and frames as Flows, a suspending wait for Live, and streaming an FLV file.
package dev.streamhub

import dev.streamhub.ffi.AudioFormat
import dev.streamhub.ffi.AudioFrame
import dev.streamhub.ffi.FlvReader
import dev.streamhub.ffi.ReceivedFrame
import dev.streamhub.ffi.SampleKind
import dev.streamhub.ffi.StreamEvent
import dev.streamhub.ffi.StreamListener
import dev.streamhub.ffi.StreamSession
import dev.streamhub.ffi.StreamState
import dev.streamhub.ffi.Subscription
import dev.streamhub.ffi.VideoFormat
import dev.streamhub.ffi.VideoFrame
import java.util.concurrent.atomic.AtomicLong
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.withContext

/** How many events [events] holds for a slow collector unless told otherwise. */
const val DEFAULT_EVENT_BUFFER: Int = 256

/**
 * The session's events. Each collection subscribes; the subscription is cancelled when the
 * collector completes, fails or is cancelled. The flow completes after the session's final
 * state (Ended or Failed). StreamEnded (a watched stream that its sender ended) is not final:
 * the session waits for the stream to come back unless `WatchOptions.endWhenStreamEnds`
 * made it end. The session's first subscriber also gets the events from before it
 * subscribed (up to 256).
 *
 * Buffer policy: events arrive on the library's `streamhub-events` thread and wait for the
 * collector in a buffer of [capacity] events; nothing is dropped here. When the buffer is
 * full that thread waits for room (delaying the session's other subscribers), the session's
 * own queue fills up, and the library then drops events other than chat messages, counting
 * them in `StreamStats.eventsDropped`. `state()` and `stats()` are always current. Keep
 * collectors quick, or give a larger [capacity].
 */
fun StreamSession.events(capacity: Int = DEFAULT_EVENT_BUFFER): Flow<StreamEvent> =
    subscribedEvents(capacity) { _, _ -> }

/** [events], showing each listener and subscription it makes to [onSubscribed] (for tests). */
internal fun StreamSession.subscribedEvents(
    capacity: Int,
    onSubscribed: (EventChannelListener, Subscription) -> Unit,
): Flow<StreamEvent> = callbackFlow {
    val listener = EventChannelListener(channel)
    val subscription = subscribe(listener)
    onSubscribed(listener, subscription)
    // The block below keeps `subscription` reachable while the flow runs: a Subscription
    // the garbage collector frees ends itself.
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}.buffer(capacity)

/** Hands the library's callbacks to a flow's channel. */
internal class EventChannelListener(private val channel: SendChannel<StreamEvent>) :
    StreamListener {
    /** Events the library handed to this listener. */
    val delivered = AtomicLong()

    override fun onEvent(event: StreamEvent) {
        delivered.incrementAndGet()
        // Waits only while the buffer is full; returns at once when the flow is over.
        channel.trySendBlocking(event)
        val state = (event as? StreamEvent.StateChanged)?.state
        if (state is StreamState.Ended || state is StreamState.Failed) channel.close()
    }
}

/** The session was not Live when [awaitLive] gave up; [state] is what it was instead. */
class NotLiveException(val state: StreamState) : Exception("the session is not live: $state")

/**
 * Suspends until the session is Live. Throws [NotLiveException] if it ended or failed
 * instead, or was still connecting after [timeout].
 */
suspend fun StreamSession.awaitLive(timeout: Duration = 10.seconds) {
    val ms = timeout.inWholeMilliseconds.coerceIn(0, UInt.MAX_VALUE.toLong()).toUInt()
    val state = waitLive(ms)
    if (state != StreamState.Live) throw NotLiveException(state)
}

/**
 * The frames a watch session receives, read with `nextFrame()` across reconnects. The flow
 * completes once the session is over (after `stop()`) and every frame was read; cancelling
 * the collector cancels the pending read. Collect it in one coroutine at a time.
 */
fun StreamSession.frames(): Flow<ReceivedFrame> = flow {
    while (true) emit(nextFrame() ?: break)
}

/**
 * Streams the FLV file at [path] (H.264 + AAC) on this broadcast: waits up to [liveTimeout]
 * for Live, then sends the codec configurations and frames in file order. When [realtime],
 * frames leave at the pace of their timestamps (video by decode time, audio by presentation
 * time), as from a camera; otherwise as fast as the session takes them. Returns the number
 * of frames sent. Throws `FileException` for a file it cannot read, `MediaException` when
 * the session refuses a frame, [NotLiveException] when it does not go live.
 */
suspend fun StreamSession.broadcastFlv(
    path: String,
    realtime: Boolean = true,
    liveTimeout: Duration = 10.seconds,
): Long = withContext(Dispatchers.IO) {
    awaitLive(liveTimeout)
    FlvReader.open(path).use { reader ->
        val start = System.nanoTime()
        var firstUs: Long? = null
        suspend fun pace(timeUs: Long) {
            if (!realtime) return
            val first = firstUs ?: timeUs.also { firstUs = it }
            val waitNs = start + (timeUs - first) * 1000 - System.nanoTime()
            if (waitNs > 0) delay((waitNs + 999_999) / 1_000_000)
        }
        var sent = 0L
        while (true) {
            val sample = reader.nextSample() ?: break
            when (sample.kind) {
                SampleKind.VIDEO_CONFIG -> setVideoConfig(sample.data)
                SampleKind.AUDIO_CONFIG -> setAudioConfig(sample.data)
                SampleKind.VIDEO -> {
                    pace(sample.dtsUs)
                    sendVideo(
                        VideoFrame(sample.data, VideoFormat.AVCC, sample.keyframe, sample.ptsUs, sample.dtsUs),
                    )
                    sent++
                }
                SampleKind.AUDIO -> {
                    pace(sample.ptsUs)
                    sendAudio(AudioFrame(sample.data, AudioFormat.AAC_RAW, sample.ptsUs))
                    sent++
                }
            }
        }
        sent
    }
}
