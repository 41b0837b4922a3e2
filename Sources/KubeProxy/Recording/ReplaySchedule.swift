/// When each piece of output is shown when a recording is played back in real time: the recorded
/// gaps divided by the speed, with long pauses (someone reading, a coffee break) cut to `maximumIdle`
/// as `asciinema play -i` does.
public struct ReplaySchedule: Sendable {
    public struct Step: Sendable, Equatable {
        /// Seconds to wait after the previous step.
        public var delay: Double
        public var output: String
        /// Set for markers, shown apart from the terminal output when asked for.
        public var marker: String?
    }

    public let steps: [Step]

    /// - Parameters:
    ///   - speed: playback speed; 2 plays twice as fast. Must be positive.
    ///   - maximumIdle: the longest pause shown, in seconds, or nil for the recorded pauses.
    public init(events: [AsciicastRecording.Event], speed: Double = 1, maximumIdle: Double? = nil) {
        precondition(speed > 0, "the speed is checked by the caller")
        var steps: [Step] = []
        var previous = 0.0
        for event in events where event.code == "o" || event.code == "m" {
            var gap = max(0, event.time - previous) / speed
            if let maximumIdle { gap = min(gap, maximumIdle) }
            previous = event.time
            steps.append(
                event.code == "o"
                    ? Step(delay: gap, output: event.data, marker: nil)
                    : Step(delay: gap, output: "", marker: event.data))
        }
        self.steps = steps
    }

    /// The playing time in seconds.
    public var duration: Double { steps.reduce(0) { $0 + $1.delay } }
}
