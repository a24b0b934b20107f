// StreamHub in an app: go live with an FLV file while printing the room's chat, and
// watch a stream while counting its frames. Needs the StreamHub package
// (bindings/swift); call these from a Task, e.g. `Task { try await broadcast(...) }`.

import StreamHub

/// Goes live with `flvPath` at `rtmpURL` in real time, printing the room's chat meanwhile.
func broadcast(flvPath: String, rtmpURL: String, chat: ChatRoom) async throws {
    let session = try StreamSession.broadcast(options: BroadcastOptions(url: rtmpURL, chat: chat))
    let printer = Task {
        // Ends by itself after the session's final state.
        for await event in session.events {
            switch event {
            case .chat(let message):
                print("\(message.userName): \(message.text)")
            case .stateChanged(let state):
                print("state: \(state)")
            default:
                break
            }
        }
    }
    defer { printer.cancel() }
    try await session.awaitLive(timeout: 10)
    _ = try await session.sendChat(text: "We are live!")
    let sent = try await session.broadcastFlv(path: flvPath, realtime: true)
    let stats = try await session.stop()
    print("sent \(sent) video frames, \(stats.framesDropped) dropped")
}

/// Watches `whepURL` until `wanted` video frames arrived or the stream ended; returns
/// how many arrived.
func watch(whepURL: String, wanted: Int = 300) async throws -> Int {
    let session = try StreamSession.watch(options: WatchOptions(url: whepURL, maxReconnectAttempts: 30))
    try await session.awaitLive(timeout: 30)
    var video = 0
    for try await frame in session.frames where frame.media == .video {
        // frame.data is H.264 in Annex B, SPS/PPS before each IDR: ready for a decoder.
        video += 1
        if video == wanted {
            break
        }
    }
    let stats = try await session.stop()
    print("watched \(video) video frames, \(stats.packetsLost) packets lost")
    return video
}
