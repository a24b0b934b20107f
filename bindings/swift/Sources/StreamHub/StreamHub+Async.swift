// The idiomatic layer over the generated bindings (Generated/StreamHub.swift, never
// edited by hand): events and frames as async sequences, waiting for Live, and
// streaming an FLV file.

import Foundation

extension StreamSession {
    /// The session's events as an async sequence.
    ///
    /// Each access subscribes anew (``subscribe(listener:)``); when the iteration ends —
    /// `break`, task cancellation, or the sequence being dropped — that subscription is
    /// cancelled. The sequence finishes by itself right after delivering the session's
    /// final state, `.stateChanged(.ended)` or `.stateChanged(.failed)`, and at once if
    /// the library was shut down. `.stateChanged(.streamEnded)` (a watched stream that
    /// its sender ended) is not final: the session waits for the stream to come back,
    /// unless `WatchOptions.endWhenStreamEnds` made it end. The first subscriber of a
    /// session also gets the events from before it subscribed (the library keeps up to
    /// 256).
    ///
    /// Buffering: unbounded. Events are few (state changes, one `.stats` a second by
    /// default, chat), and chat messages must not be lost; a consumer that stops
    /// reading should end its loop. For a bound, use ``events(bufferingPolicy:)``.
    public var events: AsyncStream<StreamEvent> {
        events(bufferingPolicy: .unbounded)
    }

    /// ``events`` with a buffering policy of your choice, e.g. `.bufferingNewest(64)`
    /// for a view that shows only recent events. Events past the bound are dropped
    /// silently: `StreamStats.eventsDropped` counts only the library's own drops.
    public func events(
        bufferingPolicy: AsyncStream<StreamEvent>.Continuation.BufferingPolicy
    ) -> AsyncStream<StreamEvent> {
        AsyncStream(bufferingPolicy: bufferingPolicy) { continuation in
            // The handler is in place before subscribing: an early end (a session
            // already over finishes the stream during `subscribe`) still cancels.
            let slot = SubscriptionSlot()
            continuation.onTermination = { _ in slot.cancel() }
            do {
                slot.set(try self.subscribe(listener: EventRelay(continuation)))
            } catch {
                continuation.finish()
            }
        }
    }

    /// The received frames (watch) as an async sequence: ``nextFrame()`` in a loop,
    /// one call per iteration, finishing when it returns `nil` (the session is over and
    /// every frame was read) and throwing its `MediaError` (`.WrongKind` on a broadcast).
    ///
    /// Frames wait in the library's bounded queue until asked for, so a slow consumer
    /// loses the oldest frames there (the next one has `discontinuity` set) instead of
    /// growing a buffer. Task cancellation finishes the sequence: no `nextFrame()` is
    /// started after it. One already waiting is not interrupted (the generated async
    /// calls do not observe cancellation); it returns with the next frame or when the
    /// session ends, so ``stop()`` the session to end a wait on a stalled stream.
    public var frames: AsyncThrowingStream<ReceivedFrame, Error> {
        AsyncThrowingStream(unfolding: {
            if Task.isCancelled {
                return nil
            }
            return try await self.nextFrame()
        })
    }

    /// Waits until the session is Live, for at most `timeout` seconds.
    ///
    /// A broadcast is Live once the ingest accepted it; a watch once the first frame
    /// arrived.
    /// - Throws: ``NotLiveError`` with the state then, if the session ended or failed
    ///   first or is still connecting when the time is up; `SessionError.ShutDown`.
    public func awaitLive(timeout: TimeInterval = 10) async throws {
        precondition(timeout >= 0, "timeout is a number of seconds, 0 or more")
        let state = try await waitLive(timeoutMs: UInt32(min(timeout * 1000, Double(UInt32.max))))
        guard state == .live else {
            throw NotLiveError(state: state)
        }
    }

    /// Streams an FLV file (H.264 + AAC) to this broadcast, as read by ``FlvReader``:
    /// its codec configurations through ``setVideoConfig(record:)`` and
    /// ``setAudioConfig(config:)``, its frames through ``sendVideo(frame:)`` and
    /// ``sendAudio(frame:)``.
    ///
    /// Call it once the session is Live (``awaitLive(timeout:)``): frames sent before
    /// are dropped and counted. Cancelling the task stops it between frames with
    /// `CancellationError`; the session goes on until ``stop()``.
    /// - Parameters:
    ///   - path: The file.
    ///   - realtime: Pace the frames by their timestamps with `Task.sleep`, as a camera
    ///     would deliver them (video by decode time, equal to its presentation time
    ///     without B-frames; audio by presentation time). `false` sends as fast as the
    ///     library accepts them.
    ///   - loops: How many times to send the file, timestamps continuing across passes.
    /// - Returns: The number of video frames sent.
    /// - Throws: `FileError` for a missing or broken file; `MediaError` from sending.
    @discardableResult
    public func broadcastFlv(path: String, realtime: Bool = true, loops: Int = 1) async throws -> Int {
        precondition(loops >= 1, "loops is 1 or more")
        let clock = Pacer()
        var offsetUs: Int64 = 0
        var fileStartUs: Int64?
        var videoFrames = 0
        for _ in 0..<loops {
            let reader = try FlvReader.open(path: path)
            var endUs = offsetUs
            var frameUs: Int64 = 33_333
            var lastDtsUs: Int64?
            while let sample = try reader.nextSample() {
                try Task.checkCancellation()
                fileStartUs = fileStartUs ?? min(sample.ptsUs, sample.dtsUs)
                let ptsUs = sample.ptsUs + offsetUs, dtsUs = sample.dtsUs + offsetUs
                endUs = max(endUs, ptsUs)
                switch sample.kind {
                case .videoConfig:
                    try setVideoConfig(record: sample.data)
                case .audioConfig:
                    try setAudioConfig(config: sample.data)
                case .video:
                    if let last = lastDtsUs, dtsUs > last {
                        frameUs = dtsUs - last
                    }
                    lastDtsUs = dtsUs
                    if realtime {
                        try await clock.sleep(untilUs: dtsUs)
                    }
                    try await sendVideo(frame: VideoFrame(
                        data: sample.data, format: .avcc, keyframe: sample.keyframe,
                        ptsUs: ptsUs, dtsUs: dtsUs))
                    videoFrames += 1
                case .audio:
                    if realtime {
                        try await clock.sleep(untilUs: ptsUs)
                    }
                    try await sendAudio(frame: AudioFrame(data: sample.data, format: .aacRaw, ptsUs: ptsUs))
                }
            }
            // The next pass starts one video frame after this one's last sample.
            offsetUs = endUs + frameUs - (fileStartUs ?? 0)
        }
        return videoFrames
    }
}

/// Thrown by ``StreamSession/awaitLive(timeout:)`` when the session is not Live in time.
public struct NotLiveError: LocalizedError, CustomStringConvertible {
    /// The state when the wait ended: `.ended` or `.failed` when the session is over,
    /// `.connecting` or `.reconnecting` when the time ran out.
    public let state: StreamState

    /// What happened, with the state.
    public var description: String { "the session is not live: \(state)" }

    /// The same as ``description``.
    public var errorDescription: String? { description }
}

/// Hands a session's events to an `AsyncStream`; the library calls it on the session's
/// `streamhub-events` thread, one event at a time.
private final class EventRelay: StreamListener, @unchecked Sendable {
    // @unchecked: AsyncStream.Continuation may be used from any thread. Before Swift 6
    // the generated StreamEvent is not declared Sendable, so neither is the continuation.
    private let continuation: AsyncStream<StreamEvent>.Continuation

    init(_ continuation: AsyncStream<StreamEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: StreamEvent) {
        continuation.yield(event)
        switch event {
        case .stateChanged(state: .ended), .stateChanged(state: .failed):
            continuation.finish()
        default:
            break
        }
    }
}

/// The subscription behind one event stream, cancelled exactly once however the
/// stream ends, even when it ends before `subscribe` has returned.
private final class SubscriptionSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var subscription: Subscription?
    private var cancelled = false

    func set(_ new: Subscription) {
        lock.lock()
        let cancelNow = cancelled
        if !cancelNow {
            subscription = new
        }
        lock.unlock()
        if cancelNow {
            new.cancel()
        }
    }

    func cancel() {
        lock.lock()
        let current = subscription
        subscription = nil
        cancelled = true
        lock.unlock()
        // Outside the lock: the library may be delivering to this stream right now.
        current?.cancel()
    }
}

/// Media time to wall-clock time for `broadcastFlv`: the first timestamp slept for is
/// "now", later ones are that far after it.
private final class Pacer {
    private let start = DispatchTime.now().uptimeNanoseconds
    private var originUs: Int64?

    func sleep(untilUs timeUs: Int64) async throws {
        let origin = originUs ?? timeUs
        originUs = origin
        let dueNs = (timeUs - origin) * 1000
        let elapsedNs = Int64(DispatchTime.now().uptimeNanoseconds - start)
        if dueNs > elapsedNs {
            try await Task.sleep(nanoseconds: UInt64(dueNs - elapsedNs))
        }
    }
}
