// Goes live with an FLV file while printing the stream's chat, and watches the stream,
// counting frames. Built by bindings/kotlin/build.sh (classpath: streamhub.jar, JNA,
// kotlinx-coroutines); run with -Djna.library.path=<dir of libstreamhub_ffi.so>.
//   Broadcast FILE.flv rtmp://host/live/KEY http://host/whep/KEY [ws://host/chat TOKEN]
package dev.streamhub.examples

import dev.streamhub.awaitLive
import dev.streamhub.broadcastFlv
import dev.streamhub.events
import dev.streamhub.frames
import dev.streamhub.ffi.BroadcastOptions
import dev.streamhub.ffi.ChatRoom
import dev.streamhub.ffi.StreamEvent
import dev.streamhub.ffi.StreamSession
import dev.streamhub.ffi.WatchOptions
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

fun main(args: Array<String>) = runBlocking(Dispatchers.Default) {
    require(args.size == 3 || args.size == 5) { "usage: FILE.flv RTMP_URL WHEP_URL [CHAT_URL TOKEN]" }
    val (file, rtmpUrl, whepUrl) = args
    val room = rtmpUrl.substringAfterLast('/') // the chat room is named like the stream
    val chat = if (args.size == 5) ChatRoom(url = args[3], room = room, token = args[4]) else null

    StreamSession.broadcast(BroadcastOptions(url = rtmpUrl, chat = chat)).use { broadcaster ->
        val printing = launch {
            broadcaster.events().collect { event ->
                when (event) {
                    is StreamEvent.StateChanged -> println("state: ${event.state.javaClass.simpleName}")
                    is StreamEvent.Chat -> println("chat: ${event.message.userName}: ${event.message.text}")
                    is StreamEvent.Viewers -> println("viewers: ${event.count}")
                    else -> {}
                }
            }
        }
        broadcaster.awaitLive()
        StreamSession.watch(WatchOptions(url = whepUrl)).use { watcher ->
            var frames = 0
            val watching = launch { watcher.frames().collect { frames++ } }
            val sent = broadcaster.broadcastFlv(file, realtime = true)
            broadcaster.stop()
            delay(1_000) // the last frames are still on their way to the watcher
            watcher.stop() // frames() completes once the session is over
            watching.join()
            println("sent $sent frames, watched $frames")
        }
        printing.join() // events() completes after the final state
    }
}
