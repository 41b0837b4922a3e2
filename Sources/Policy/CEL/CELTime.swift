import Foundation

/// A point in time (`google.protobuf.Timestamp`; cel-spec "Timestamps and Durations").
///
/// Valid from `0001-01-01T00:00:00Z` to `9999-12-31T23:59:59.999999999Z`; operations that leave
/// this range fail with `.overflow`.
public struct CELTimestamp: Sendable, Hashable, Comparable {
    /// Seconds since the Unix epoch.
    public let seconds: Int64
    /// Nanoseconds within the second, `0..<1_000_000_000`.
    public let nanos: Int32

    static let minSeconds: Int64 = -62_135_596_800
    static let maxSeconds: Int64 = 253_402_300_799

    /// A timestamp, or `.overflow` outside the valid range.
    public init(seconds: Int64, nanos: Int32 = 0) throws(CELError) {
        var seconds = seconds
        var nanos = nanos
        if nanos < 0 || nanos >= 1_000_000_000 {
            let (carry, remainder) = Int64(nanos).quotientAndRemainder(dividingBy: 1_000_000_000)
            seconds = seconds &+ carry
            nanos = Int32(remainder)
            if nanos < 0 {
                nanos += 1_000_000_000
                seconds = seconds &- 1
            }
        }
        guard seconds >= Self.minSeconds, seconds <= Self.maxSeconds else {
            throw CELError(.overflow, "timestamp out of range")
        }
        self.seconds = seconds
        self.nanos = nanos
    }

    public static func < (lhs: CELTimestamp, rhs: CELTimestamp) -> Bool {
        (lhs.seconds, lhs.nanos) < (rhs.seconds, rhs.nanos)
    }

    /// Parses an RFC 3339 timestamp such as `2024-01-02T03:04:05.5+01:00`.
    public init(rfc3339 text: String) throws(CELError) {
        let bytes = Array(text.utf8)
        var reader = CELTimeTextReader(bytes: bytes)
        func fail() -> CELError { CELError(.invalidArgument, "timestamp parse error: invalid timestamp \"\(text)\"") }
        guard let year = reader.digits(4), reader.skip(UInt8(ascii: "-")),
            let month = reader.digits(2), reader.skip(UInt8(ascii: "-")),
            let day = reader.digits(2), reader.skip(UInt8(ascii: "T")) || reader.skip(UInt8(ascii: "t")),
            let hour = reader.digits(2), reader.skip(UInt8(ascii: ":")),
            let minute = reader.digits(2), reader.skip(UInt8(ascii: ":")),
            let second = reader.digits(2)
        else { throw fail() }
        var nanos: Int64 = 0
        if reader.skip(UInt8(ascii: ".")) {
            var count = 0
            while let digit = reader.peekDigit() {
                reader.position += 1
                if count < 9 { nanos = nanos * 10 + Int64(digit) }
                count += 1
            }
            guard count > 0 else { throw fail() }
            for _ in count..<max(count, 9) { nanos *= 10 }
        }
        var offset: Int64 = 0
        if reader.skip(UInt8(ascii: "Z")) || reader.skip(UInt8(ascii: "z")) {
            offset = 0
        } else if let sign = reader.next(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            guard let hours = reader.digits(2), reader.skip(UInt8(ascii: ":")), let minutes = reader.digits(2),
                hours < 24, minutes < 60
            else { throw fail() }
            offset = (Int64(hours) * 3600 + Int64(minutes) * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        } else {
            throw fail()
        }
        guard reader.atEnd, (1...12).contains(month), day >= 1, day <= CELCivil.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { throw fail() }
        let days = CELCivil.daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let local = days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
        try self.init(seconds: local - offset, nanos: Int32(nanos))
    }

    /// RFC 3339 in UTC with the shortest fraction, as cel-go's `string(timestamp)` prints it.
    public var rfc3339: String {
        let civil = CELCivil(seconds: seconds)
        var text = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", civil.year, civil.month, civil.day,
            civil.hour, civil.minute, civil.second)
        if nanos > 0 {
            var fraction = String(format: "%09d", nanos)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "Z"
    }

    /// `self + duration`, or `.overflow` outside the valid range.
    func adding(_ duration: CELDuration) throws(CELError) -> CELTimestamp {
        let (durationSeconds, durationNanos) = duration.nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        let (sum, overflow) = seconds.addingReportingOverflow(durationSeconds)
        guard !overflow else { throw CELError(.overflow, "timestamp out of range") }
        return try CELTimestamp(seconds: sum, nanos: nanos + Int32(durationNanos))
    }

    /// `self - other` as a duration, or `.overflow` when it does not fit.
    func difference(_ other: CELTimestamp) throws(CELError) -> CELDuration {
        let seconds = self.seconds - other.seconds
        let nanos = Int64(self.nanos) - Int64(other.nanos)
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = scaled.addingReportingOverflow(nanos)
        guard !overflow, !overflow2 else { throw CELError(.overflow, "duration out of range") }
        return CELDuration(nanoseconds: total)
    }
}

/// A span of time (`google.protobuf.Duration`), stored as nanoseconds like Go's `time.Duration`
/// that cel-go and Kubernetes use, so its range is about ±292 years.
public struct CELDuration: Sendable, Hashable, Comparable {
    public let nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: CELDuration, rhs: CELDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Parses a Go duration string (`1h30m`, `-1.5s`, `300ms`, `2us`, `10ns`).
    public init(goDuration text: String) throws(CELError) {
        func fail() -> CELError { CELError(.invalidArgument, "invalid duration \"\(text)\"") }
        var bytes = Array(text.utf8)[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        if bytes.elementsEqual("0".utf8) {
            self.init(nanoseconds: 0)
            return
        }
        guard !bytes.isEmpty else { throw fail() }
        var total: UInt64 = 0
        let limit = UInt64(Int64.max) + (negative ? 1 : 0)
        while !bytes.isEmpty {
            var whole: UInt64 = 0
            var fraction: UInt64 = 0
            var fractionScale: UInt64 = 1
            var sawDigits = false
            while let byte = bytes.first, (48...57).contains(byte) {
                let (product, overflow1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = product.addingReportingOverflow(UInt64(byte - 48))
                guard !overflow1, !overflow2 else { throw fail() }
                whole = sum
                sawDigits = true
                bytes = bytes.dropFirst()
            }
            if bytes.first == UInt8(ascii: ".") {
                bytes = bytes.dropFirst()
                while let byte = bytes.first, (48...57).contains(byte) {
                    if fractionScale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + UInt64(byte - 48)
                        fractionScale *= 10
                    }
                    sawDigits = true
                    bytes = bytes.dropFirst()
                }
            }
            guard sawDigits else { throw fail() }
            var unitBytes: [UInt8] = []
            while let byte = bytes.first, byte != UInt8(ascii: "."), !(48...57).contains(byte) {
                unitBytes.append(byte)
                bytes = bytes.dropFirst()
            }
            let unit: UInt64
            switch String(decoding: unitBytes, as: UTF8.self) {
            case "ns": unit = 1
            case "us", "µs", "μs": unit = 1_000
            case "ms": unit = 1_000_000
            case "s": unit = 1_000_000_000
            case "m": unit = 60_000_000_000
            case "h": unit = 3_600_000_000_000
            default: throw fail()
            }
            let (scaled, overflow) = whole.multipliedReportingOverflow(by: unit)
            guard !overflow else { throw fail() }
            let fractional = UInt64((Double(fraction) * Double(unit) / Double(fractionScale)).rounded(.down))
            let (partial, overflow2) = scaled.addingReportingOverflow(fractional)
            let (sum, overflow3) = total.addingReportingOverflow(partial)
            guard !overflow2, !overflow3, sum <= limit else { throw fail() }
            total = sum
        }
        self.init(nanoseconds: negative ? Int64(bitPattern: 0 &- total) : Int64(total))
    }

    /// Seconds with the shortest fraction and an `s` suffix, as cel-go's `string(duration)` prints it.
    public var goString: String {
        let (seconds, nanos) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        let sign = nanoseconds < 0 ? "-" : ""
        var text = sign + String(seconds.magnitude)
        if nanos != 0 {
            var fraction = String(format: "%09d", nanos.magnitude)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "s"
    }
}

/// Reads fixed-width fields of a timestamp string.
private struct CELTimeTextReader {
    let bytes: [UInt8]
    var position = 0

    var atEnd: Bool { position == bytes.count }

    mutating func next() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    func peekDigit() -> Int? {
        guard position < bytes.count, (48...57).contains(bytes[position]) else { return nil }
        return Int(bytes[position] - 48)
    }

    mutating func digits(_ count: Int) -> Int? {
        var value = 0
        for _ in 0..<count {
            guard let digit = peekDigit() else { return nil }
            value = value * 10 + digit
            position += 1
        }
        return value
    }

    mutating func skip(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }
}

/// Proleptic Gregorian calendar fields of a Unix time, computed without Foundation's Calendar.
struct CELCivil {
    let year: Int
    /// 1-based.
    let month: Int
    /// 1-based.
    let day: Int
    let hour: Int
    let minute: Int
    let second: Int
    /// 0 is Sunday.
    let weekday: Int
    /// 0-based day of the year.
    let dayOfYear: Int

    init(seconds: Int64) {
        let (days, secondOfDay) = CELCivil.floorDivide(seconds, 86_400)
        // Howard Hinnant's civil_from_days.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYearMarch = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYearMarch + 2) / 153
        let day = dayOfYearMarch - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.year = Int(year)
        self.month = Int(month)
        self.day = Int(day)
        hour = Int(secondOfDay / 3600)
        minute = Int(secondOfDay % 3600 / 60)
        second = Int(secondOfDay % 60)
        weekday = Int(CELCivil.floorDivide(days + 4, 7).remainder)
        dayOfYear = Int(days - CELCivil.daysFromCivil(year: year, month: 1, day: 1))
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let adjustedYear = month <= 2 ? year - 1 : year
        let era = (adjustedYear >= 0 ? adjustedYear : adjustedYear - 399) / 400
        let yearOfEra = adjustedYear - era * 400
        let monthPrime = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthPrime + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Time zones for the timestamp accessors: an IANA name (`America/New_York`, `UTC`) or a fixed
/// offset (`+05:30`, `-08:00`), as cel-go accepts them.
enum CELTimeZone {
    /// The offset from UTC, in seconds, of `zone` at the instant `seconds`.
    static func offset(_ zone: String, at seconds: Int64) throws(CELError) -> Int64 {
        if zone.contains(":") {
            var text = Substring(zone)
            var sign: Int64 = 1
            if text.hasPrefix("-") {
                sign = -1
                text = text.dropFirst()
            } else if text.hasPrefix("+") {
                text = text.dropFirst()
            }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let hours = Int64(parts[0]), let minutes = Int64(parts[1]),
                (0..<24).contains(hours), (0..<60).contains(minutes)
            else { throw CELError(.invalidArgument, "invalid time zone: \(zone)") }
            return sign * (hours * 3600 + minutes * 60)
        }
        guard let timeZone = TimeZone(identifier: zone) else {
            throw CELError(.invalidArgument, "unknown time zone: \(zone)")
        }
        return Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
    }
}
