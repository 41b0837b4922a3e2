/// Timestamps and durations (cel-spec "Timestamps and Durations"): conversions from strings
/// and accessors, with an optional time-zone argument (IANA name or `±HH:MM`). Months, days of
/// the month, days of the week and days of the year are 0-based, except `getDate` (1-based).
extension CELStandardLibrary {
    private enum Accessor: String, CaseIterable {
        case getFullYear, getMonth, getDate, getDayOfMonth, getDayOfWeek, getDayOfYear
        case getHours, getMinutes, getSeconds, getMilliseconds

        var appliesToDurations: Bool {
            switch self {
            case .getHours, .getMinutes, .getSeconds, .getMilliseconds: return true
            default: return false
            }
        }
    }

    static let time: [CELFunctionDecl] = {
        var decls: [CELFunctionDecl] = [
            .global(
                "timestamp", ["string -> timestamp", "int -> timestamp", "timestamp -> timestamp"],
                .unary(toTimestamp)),
            .global("duration", ["string -> duration", "duration -> duration"], .unary(toDuration)),
        ]
        for accessor in Accessor.allCases {
            let durationSignature = accessor.appliesToDurations ? ["duration -> int"] : []
            decls.append(
                .member(
                    accessor.rawValue, ["timestamp -> int"] + durationSignature,
                    .unary { value throws(CELError) in
                        try access(accessor, value, zone: nil)
                    }))
            decls.append(
                .member(
                    accessor.rawValue, ["timestamp, string -> int"],
                    .binary { value, zone throws(CELError) in
                        guard case .string(let name) = zone else {
                            throw CELError.noOverload(accessor.rawValue, value, zone)
                        }
                        return try access(accessor, value, zone: name)
                    }))
        }
        return decls
    }()

    static func toTimestamp(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .timestamp: return value
        case .string(let text): return .timestamp(try CELTimestamp(rfc3339: text))
        case .int(let seconds): return .timestamp(try CELTimestamp(seconds: seconds))
        default: throw CELError.noOverload("timestamp", value)
        }
    }

    static func toDuration(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .duration: return value
        case .string(let text): return .duration(try CELDuration(goDuration: text))
        default: throw CELError.noOverload("duration", value)
        }
    }

    private static func access(_ accessor: Accessor, _ value: CELValue, zone: String?) throws(CELError) -> CELValue {
        switch value {
        case .duration(let duration) where accessor.appliesToDurations && zone == nil:
            let nanos = duration.nanoseconds
            switch accessor {
            case .getHours: return .int(nanos / 3_600_000_000_000)
            case .getMinutes: return .int(nanos / 60_000_000_000)
            case .getSeconds: return .int(nanos / 1_000_000_000)
            default: return .int(nanos / 1_000_000)
            }
        case .timestamp(let timestamp):
            let offset =
                try zone.map { name throws(CELError) in try CELTimeZone.offset(name, at: timestamp.seconds) } ?? 0
            let civil = CELCivil(seconds: timestamp.seconds + offset)
            switch accessor {
            case .getFullYear: return .int(Int64(civil.year))
            case .getMonth: return .int(Int64(civil.month - 1))
            case .getDate: return .int(Int64(civil.day))
            case .getDayOfMonth: return .int(Int64(civil.day - 1))
            case .getDayOfWeek: return .int(Int64(civil.weekday))
            case .getDayOfYear: return .int(Int64(civil.dayOfYear))
            case .getHours: return .int(Int64(civil.hour))
            case .getMinutes: return .int(Int64(civil.minute))
            case .getSeconds: return .int(Int64(civil.second))
            case .getMilliseconds: return .int(Int64(timestamp.nanos / 1_000_000))
            }
        default:
            throw CELError.noOverload(accessor.rawValue, value)
        }
    }
}
