// What one Kotlin call into the library costs (JNA + uniffi lowering/lifting), printed by
// ffi/tests/it/kotlin.rs after the JUnit run: version() (returns a String) and stats() (a
// record of 14 fields) on a live session, in ns per call after a warm-up.
package dev.streamhub

import dev.streamhub.ffi.BroadcastOptions
import dev.streamhub.ffi.StreamSession
import dev.streamhub.ffi.shutdown
import dev.streamhub.ffi.version
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.time.Duration.Companion.seconds

/** Nanoseconds per call of [call] over [calls] calls; [call]'s results feed [sink]. */
private inline fun nsPerCall(calls: Int, sink: LongArray, call: () -> Long): Double {
    val start = System.nanoTime()
    for (i in 0 until calls) sink[0] += call()
    return (System.nanoTime() - start).toDouble() / calls
}

/** Prints `call cost: NAME NS ns/call (N calls)` lines. */
fun main() {
    val sink = LongArray(1)
    nsPerCall(20_000, sink) { version().length.toLong() } // warm-up: JIT, JNA
    val versionNs = nsPerCall(200_000, sink) { version().length.toLong() }

    val url = System.getenv("STREAMHUB_RTMP_URL") ?: error("STREAMHUB_RTMP_URL is not set")
    val session = StreamSession.broadcast(BroadcastOptions(url = url + "kt-call-cost", statsIntervalMs = 0u))
    runBlocking { session.awaitLive(10.seconds) }
    nsPerCall(10_000, sink) { session.stats().uptimeMs.toLong() }
    val statsNs = nsPerCall(20_000, sink) { session.stats().uptimeMs.toLong() }
    runBlocking { withTimeout(15.seconds) { session.stop() } }
    session.close()
    shutdown(5_000u)

    println("call cost: version() %.0f ns/call (200000 calls)".format(versionNs))
    println("call cost: stats() %.0f ns/call (20000 calls)".format(statsNs))
    if (sink[0] == 42L) println() // keeps the results alive
}
