// Tests of the Swift package on macOS. Those that need a hub read its endpoints from
// the environment, as bindings/swift/scripts/test-macos.sh sets it, and are skipped
// without it; the others need only the library.

import Foundation
import StreamHub
import XCTest

final class StreamHubTests: XCTestCase {
    // MARK: Against a hub

    /// The demo clip, published twice in real time, arrives at a watcher as H.264.
    func testPublishingTheDemoClipWhileWatching() async throws {
        let flv = try environment("STREAMHUB_DEMO_FLV")
        let name = uniqueStreamName()
        let clipFrames = try videoFrames(inFlv: flv)
        let broadcaster = try StreamSession.broadcast(options: BroadcastOptions(url: try rtmpURL(name)))
        let broadcasterLog = EventLog(broadcaster)
        try await broadcaster.awaitLive(timeout: 10)

        // The hub knows the stream from the publish on: the watcher connects while the
        // first frames go out, and goes Live with the first frame it gets.
        // A frame queue larger than the default (ABI 2 option): both loops fit.
        let watcher = try StreamSession.watch(options: WatchOptions(
            url: try whepURL(name), maxReconnectAttempts: 20, frameQueueCapacity: 1024))
        let receiving = Task { () async throws -> Received in
            var received = Received()
            for try await frame in watcher.frames {
                received.add(frame)
                if received.video >= 120 {
                    break
                }
            }
            return received
        }
        let sent = try await broadcaster.broadcastFlv(path: flv, realtime: true, loops: 2)
        let sentStats = try await broadcaster.stop()
        // Stopping the watcher ends `frames`, should the 120 frames never have come.
        let watched = try await watcher.stop()
        let received = try await receiving.value
        // The watch counters (ABI 2) reach Swift.
        XCTAssertNotNil(watched.firstFrameMs, "a first frame time")

        XCTAssertEqual(sent, 2 * clipFrames)
        XCTAssertEqual(sentStats.videoFrames, UInt64(sent))
        XCTAssertEqual(sentStats.framesDropped, 0)
        XCTAssertGreaterThanOrEqual(received.video, 120, "video frames received")
        XCTAssertEqual(received.videoCodecs, ["h264"])
        XCTAssertEqual(received.notAnnexB, 0, "H.264 arrives as Annex B")
        XCTAssertGreaterThan(received.keyframes, 0)
        XCTAssertEqual(received.keyframesWithoutSPS, 0, "SPS/PPS come before each IDR")
        XCTAssertGreaterThan(received.audio, 0, "audio arrived too")

        // The first subscriber got the events from before it subscribed, and the event
        // stream finished after the final state.
        _ = try await broadcasterLog.first(within: 2, "the broadcaster's Live event") {
            $0 == .stateChanged(state: .live)
        }
        _ = try await broadcasterLog.first(within: 5, "the broadcaster's Ended event") {
            $0 == .stateChanged(state: .ended)
        }
        let finished = await broadcasterLog.waitFinished(within: 5)
        XCTAssertTrue(finished, "the events stream finishes after .ended")
    }

    /// A message from each side reaches the other, and each sender hears it was published.
    func testChatRoundTripBetweenBroadcasterAndWatcher() async throws {
        let chatURL = try environment("STREAMHUB_CHAT_URL")
        let alice = try environment("STREAMHUB_TOKEN_ALICE")
        let bob = try environment("STREAMHUB_TOKEN_BOB")
        let name = uniqueStreamName()
        let broadcaster = try StreamSession.broadcast(options: BroadcastOptions(
            url: try rtmpURL(name), chat: ChatRoom(url: chatURL, room: name, token: alice)))
        // No media is sent: the watcher reconnects meanwhile, its chat is unaffected.
        let watcher = try StreamSession.watch(options: WatchOptions(
            url: try whepURL(name), chat: ChatRoom(url: chatURL, room: name, token: bob),
            maxReconnectAttempts: 100))
        let broadcasterLog = EventLog(broadcaster)
        let watcherLog = EventLog(watcher)
        _ = try await broadcasterLog.first(within: 10, "the broadcaster joining the room") { $0.isChatJoined }
        _ = try await watcherLog.first(within: 10, "the watcher joining the room") { $0.isChatJoined }

        let fromAlice = "hello from the Swift broadcaster in \(name)"
        let fromBob = "hello from the Swift watcher in \(name)"
        let aliceId = try await broadcaster.sendChat(text: fromAlice)
        let bobId = try await watcher.sendChat(text: fromBob)

        _ = try await broadcasterLog.first(within: 10, "ChatSent for the broadcaster's message") {
            $0.sentClientMsgId == aliceId
        }
        _ = try await watcherLog.first(within: 10, "ChatSent for the watcher's message") {
            $0.sentClientMsgId == bobId
        }
        let atBob = try await watcherLog.first(within: 10, "the broadcaster's message at the watcher") {
            $0.chatMessage?.text == fromAlice
        }.chatMessage
        let atAlice = try await broadcasterLog.first(within: 10, "the watcher's message at the broadcaster") {
            $0.chatMessage?.text == fromBob
        }.chatMessage
        XCTAssertEqual(atBob?.userName, try nameInToken(alice))
        XCTAssertEqual(atAlice?.userName, try nameInToken(bob))
        XCTAssertEqual(atBob?.room, name)
        XCTAssertNotEqual(atBob?.userId, atAlice?.userId)

        _ = try await broadcaster.stop()
        _ = try await watcher.stop()
    }

    /// An unreachable primary ingest gives way to the backup, which the events name.
    func testAnUnreachablePrimaryGivesWayToTheBackup() async throws {
        let name = uniqueStreamName()
        let broadcaster = try StreamSession.broadcast(options: BroadcastOptions(
            url: "rtmp://127.0.0.1:9/live/\(name)", backupUrls: [try rtmpURL(name)], attemptsPerIngest: 1,
            dropDisposableMs: 400, dropUntilKeyframeMs: 600, dropGopsMs: 800))
        let log = EventLog(broadcaster)
        try await broadcaster.awaitLive(timeout: 10)
        XCTAssertEqual(broadcaster.stats().ingest, 1)
        _ = log
        _ = try await broadcaster.stop()
    }

    // MARK: Errors, with the library only

    func testCongestionThresholdsOutOfOrderAreASessionError() {
        XCTAssertThrowsError(try StreamSession.broadcast(options: BroadcastOptions(
            url: "rtmp://127.0.0.1:9/live/key", dropDisposableMs: 950, dropUntilKeyframeMs: 900))) { error in
            guard let sessionError = error as? SessionError, case .InvalidOptions = sessionError else {
                return XCTFail("expected SessionError.InvalidOptions, got \(error)")
            }
        }
    }

    func testAnInvalidURLIsASessionError() {
        for make in [
            { try StreamSession.broadcast(options: BroadcastOptions(url: "not a url")) },
            { try StreamSession.broadcast(options: BroadcastOptions(url: "http://127.0.0.1/live/key")) },
            { try StreamSession.watch(options: WatchOptions(url: "rtmp://127.0.0.1/live/key")) },
        ] as [() throws -> StreamSession] {
            XCTAssertThrowsError(try make()) { error in
                guard let sessionError = error as? SessionError, case .InvalidOptions = sessionError else {
                    return XCTFail("expected SessionError.InvalidOptions, got \(error)")
                }
            }
        }
    }

    func testMediaCallsOnTheWrongKindOfSessionAreMediaErrors() async throws {
        let watcher = try StreamSession.watch(options: WatchOptions(url: "http://127.0.0.1:9/whep/none"))
        let frame = VideoFrame(data: Data([0, 0, 0, 1, 0x65, 0x88]), format: .annexB, keyframe: true, ptsUs: 0, dtsUs: 0)
        await assertThrows(MediaError.self, "sendVideo on a watch session", { try await watcher.sendVideo(frame: frame) }) {
            if case .WrongKind = $0 { return true }
            return false
        }
        let broadcaster = try StreamSession.broadcast(options: BroadcastOptions(url: "rtmp://127.0.0.1:9/live/none"))
        await assertThrows(MediaError.self, "frames of a broadcast", {
            for try await _ in broadcaster.frames {}
        }) {
            if case .WrongKind = $0 { return true }
            return false
        }
        _ = try await watcher.stop()
        _ = try await broadcaster.stop()
    }

    func testSendChatWithoutAChatRoomIsAChatError() async throws {
        let session = try StreamSession.broadcast(options: BroadcastOptions(
            url: "rtmp://127.0.0.1:9/live/none", maxReconnectAttempts: 100))
        await assertThrows(ChatError.self, "sendChat without a chat room", { try await session.sendChat(text: "hi") }) {
            if case .Unavailable = $0 { return true }
            return false
        }
        _ = try await session.stop()
    }

    func testAMissingOrBrokenFileIsAFileError() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueStreamName())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.flv").path
        let notFlv = directory.appendingPathComponent("not.flv")
        try Data("this is not a video".utf8).write(to: notFlv)

        for path in [missing, notFlv.path] {
            XCTAssertThrowsError(try FlvReader.open(path: path)) { error in
                guard let fileError = error as? FileError, case .Unreadable = fileError else {
                    return XCTFail("expected FileError.Unreadable for \(path), got \(error)")
                }
            }
        }
        let session = try StreamSession.broadcast(options: BroadcastOptions(url: "rtmp://127.0.0.1:9/live/none"))
        await assertThrows(FileError.self, "broadcastFlv of a missing file", {
            try await session.broadcastFlv(path: missing)
        }) {
            if case .Unreadable = $0 { return true }
            return false
        }
        _ = try await session.stop()
    }

    // MARK: The async layer, on fakes

    func testCancellingTheEventLoopCancelsTheSubscription() async throws {
        let session = FakeSession(noHandle: StreamSession.NoHandle())
        let events = session.events
        XCTAssertEqual(session.listenerCount, 1, "subscribed when the stream was made")
        let read = Counter()
        let consumer = Task {
            for await _ in events {
                read.increment()
            }
        }
        session.deliver(.viewers(count: 1))
        session.deliver(.viewers(count: 2))
        try await eventually("the consumer reading both events") { read.value == 2 }
        XCTAssertEqual(session.subscription.cancels, 0, "not cancelled while the loop runs")

        consumer.cancel()
        await consumer.value
        try await eventually("the subscription cancelled") { session.subscription.cancels == 1 }
        session.deliver(.viewers(count: 3))
        XCTAssertEqual(read.value, 2, "nothing read after the cancellation")
    }

    func testTheEventStreamFinishesAfterTheFinalState() async throws {
        for last in [StreamState.ended, .failed(reason: .rejected(detail: "refused key"))] {
            let session = FakeSession(noHandle: StreamSession.NoHandle())
            let events = session.events
            session.deliver(.stateChanged(state: .live))
            session.deliver(.stateChanged(state: last))
            session.deliver(.viewers(count: 3)) // after the end: not in the stream
            var received: [StreamEvent] = []
            for await event in events {
                received.append(event)
            }
            XCTAssertEqual(received, [.stateChanged(state: .live), .stateChanged(state: last)])
            XCTAssertEqual(session.subscription.cancels, 1, "finishing cancels the subscription")
        }
    }

    func testFramesEndAtNilAndOnCancellation() async throws {
        let ending = FakeSession(noHandle: StreamSession.NoHandle())
        ending.framesAvailable = 5
        var count = 0
        for try await frame in ending.frames {
            XCTAssertEqual(frame.timestampUs, Int64(count) * 33_333)
            count += 1
        }
        XCTAssertEqual(count, 5)

        let endless = FakeSession(noHandle: StreamSession.NoHandle())
        let consumer = Task { () async throws -> Int in
            var count = 0
            for try await _ in endless.frames {
                count += 1
                if count == 3 {
                    withUnsafeCurrentTask { $0?.cancel() }
                }
            }
            return count
        }
        let read = try await consumer.value
        XCTAssertEqual(read, 3)
        XCTAssertEqual(endless.frameCalls, 3, "no nextFrame() after the cancellation")
    }
}

// MARK: - Helpers

/// A variable of the environment test-macos.sh sets; skips the test without it.
private func environment(_ name: String) throws -> String {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
        throw XCTSkip("\(name) is not set: run bindings/swift/scripts/test-macos.sh, "
            + "which starts a hub and sets the STREAMHUB_* variables")
    }
    return value
}

private func withoutTrailingSlash(_ url: String) -> String {
    url.hasSuffix("/") ? String(url.dropLast()) : url
}

/// `STREAMHUB_RTMP_URL` (`rtmp://host:port/app`) with the stream's key, its name.
private func rtmpURL(_ stream: String) throws -> String {
    withoutTrailingSlash(try environment("STREAMHUB_RTMP_URL")) + "/" + stream
}

/// `STREAMHUB_WHEP_URL` (`http://host:port/whep`, or the hub's `…/whep/{name}`) for the stream.
private func whepURL(_ stream: String) throws -> String {
    let base = try environment("STREAMHUB_WHEP_URL")
    if base.contains("{name}") {
        return base.replacingOccurrences(of: "{name}", with: stream)
    }
    return withoutTrailingSlash(base) + "/" + stream
}

/// A stream (and chat room) name of its own for each test.
private func uniqueStreamName() -> String {
    "swift-" + UUID().uuidString.prefix(8).lowercased()
}

/// The video frames in an FLV file.
private func videoFrames(inFlv path: String) throws -> Int {
    let reader = try FlvReader.open(path: path)
    var count = 0
    while let sample = try reader.nextSample() {
        if sample.kind == .video {
            count += 1
        }
    }
    return count
}

/// The display name in a chat token: the `name` claim of the JWT.
private func nameInToken(_ token: String) throws -> String {
    let parts = token.split(separator: ".")
    let part = try XCTUnwrap(parts.count == 3 ? parts[1] : nil, "a JWT has three parts")
    var payload = String(part).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    payload += String(repeating: "=", count: (4 - payload.count % 4) % 4)
    let data = try XCTUnwrap(Data(base64Encoded: payload), "the token's payload is base64url")
    let claims = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return try XCTUnwrap(claims["name"] as? String, "the token has a name claim")
}

/// Fails the test unless `body` throws an `E` that `matches`.
private func assertThrows<E: Error>(
    _ errorType: E.Type, _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ body: () async throws -> Void, matches: (E) -> Bool
) async {
    do {
        try await body()
        XCTFail("\(what): no error", file: file, line: line)
    } catch let error as E {
        XCTAssertTrue(matches(error), "\(what): unexpected \(error)", file: file, line: line)
    } catch {
        XCTFail("\(what): expected \(E.self), got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// Waits up to `seconds` for `condition`, polling.
private func eventually(_ what: String, within seconds: TimeInterval = 5, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        guard Date() < deadline else {
            throw TimedOut(what: what)
        }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// A wait that ran out of time.
private struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// What a watcher received, counted.
private struct Received: Sendable {
    var video = 0
    var audio = 0
    var videoCodecs: Set<String> = []
    var notAnnexB = 0
    var keyframes = 0
    var keyframesWithoutSPS = 0

    mutating func add(_ frame: ReceivedFrame) {
        guard frame.media == .video else {
            audio += 1
            return
        }
        video += 1
        videoCodecs.insert(frame.codec)
        let types = annexBNalTypes(frame.data)
        if types.isEmpty {
            notAnnexB += 1
        }
        if frame.keyframe {
            keyframes += 1
            if !types.contains(7) {
                keyframesWithoutSPS += 1
            }
        }
    }
}

/// The NAL unit types of an Annex B access unit; empty if it does not start with a
/// start code.
private func annexBNalTypes(_ data: Data) -> [UInt8] {
    let bytes = [UInt8](data)
    guard bytes.starts(with: [0, 0, 1]) || bytes.starts(with: [0, 0, 0, 1]) else {
        return []
    }
    var types: [UInt8] = []
    var i = 0
    while i + 3 < bytes.count {
        if bytes[i] == 0, bytes[i + 1] == 0, bytes[i + 2] == 1 {
            types.append(bytes[i + 3] & 0x1F)
            i += 3
        } else {
            i += 1
        }
    }
    return types
}

/// A session's events, recorded through `events` (the layer under test), to wait on.
private final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [StreamEvent] = []
    private var finished = false

    init(_ session: StreamSession) {
        let events = session.events
        Task {
            for await event in events {
                self.locked { $0.recorded.append(event) }
            }
            self.locked { $0.finished = true }
        }
    }

    private func locked<T>(_ body: (EventLog) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(self)
    }

    /// The first event that `matches`, waiting up to `seconds` for it.
    func first(within seconds: TimeInterval, _ what: String, where matches: (StreamEvent) -> Bool) async throws -> StreamEvent {
        var found: StreamEvent?
        try await eventually(what, within: seconds) {
            found = locked { $0.recorded.first(where: matches) }
            return found != nil
        }
        return found!
    }

    /// Whether the events stream finished within `seconds`.
    func waitFinished(within seconds: TimeInterval) async -> Bool {
        (try? await eventually("the events stream finishing", within: seconds) { locked { $0.finished } }) != nil
    }
}

extension StreamEvent {
    fileprivate var isChatJoined: Bool {
        if case .chatJoined = self {
            return true
        }
        return false
    }

    fileprivate var chatMessage: ChatMessage? {
        if case .chat(let message) = self {
            return message
        }
        return nil
    }

    fileprivate var sentClientMsgId: String? {
        if case .chatSent(let id, _) = self {
            return id
        }
        return nil
    }
}

/// A StreamSession with no library session behind it (`init(noHandle:)`, which the
/// generated code has for fakes): it keeps its listeners, hands out one
/// `FakeSubscription`, and makes up frames. Only the overridden methods may be called.
private final class FakeSession: StreamSession {
    private let lock = NSLock()
    private var listeners: [StreamListener] = []
    private var calls = 0
    private var available = Int.max
    let subscription = FakeSubscription(noHandle: Subscription.NoHandle())

    override func subscribe(listener: StreamListener) throws -> Subscription {
        lock.lock()
        listeners.append(listener)
        lock.unlock()
        return subscription
    }

    override func nextFrame() async throws -> ReceivedFrame? {
        let (n, left) = countCall()
        await Task.yield()
        guard left else {
            return nil
        }
        return ReceivedFrame(media: .video, codec: "h264", data: Data([0, 0, 0, 1, 0x65, 0x88]),
                             timestampUs: Int64(n) * 33_333, keyframe: true, discontinuity: false)
    }

    /// Counts a nextFrame() call: its index, and whether a frame is left for it.
    private func countCall() -> (Int, Bool) {
        lock.lock()
        defer { lock.unlock() }
        calls += 1
        return (calls - 1, available >= calls)
    }

    var listenerCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return listeners.count
    }

    var frameCalls: Int {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }

    var framesAvailable: Int {
        get {
            lock.lock()
            defer { lock.unlock() }
            return available
        }
        set {
            lock.lock()
            available = newValue
            lock.unlock()
        }
    }

    /// Calls every listener with `event`, as the library's event thread does.
    func deliver(_ event: StreamEvent) {
        lock.lock()
        let current = listeners
        lock.unlock()
        for listener in current {
            listener.onEvent(event: event)
        }
    }
}

/// A thread-safe count.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
}

/// A Subscription that counts `cancel()` calls.
private final class FakeSubscription: Subscription {
    private let cancelled = Counter()

    var cancels: Int { cancelled.value }

    override func cancel() {
        cancelled.increment()
    }
}
