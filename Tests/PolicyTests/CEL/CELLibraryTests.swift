import Testing

@testable import Policy

@Suite("CEL libraries")
struct CELLibraryTests {
    @Test("timestamps parse, print, compare and do arithmetic")
    func timestamps() throws {
        #expect(
            try evaluate("string(timestamp('2024-02-29T12:30:00.250+01:00'))") == .string("2024-02-29T11:30:00.25Z"))
        #expect(
            try evaluate("timestamp('2024-01-01T00:00:00Z') + duration('1h30m') == timestamp('2024-01-01T01:30:00Z')")
                == .bool(true))
        #expect(
            try evaluate("timestamp('2024-01-02T00:00:00Z') - timestamp('2024-01-01T00:00:00Z') == duration('24h')")
                == .bool(true))
        #expect(try evaluate("timestamp('2024-01-01T00:00:00Z') < timestamp('2024-01-01T00:00:01Z')") == .bool(true))
        #expect(try evaluate("int(timestamp('1970-01-01T00:01:00Z'))") == .int(60))
        #expect(errorKind("timestamp('2024-13-01T00:00:00Z')") == .invalidArgument)
        #expect(errorKind("timestamp('9999-12-31T23:59:59Z') + duration('1s')") == .overflow)
        #expect(errorKind("timestamp(-62135596801)") == .overflow)
    }

    @Test("timestamp accessors with and without a time zone")
    func accessors() throws {
        let ts = "timestamp('2024-03-10T07:30:45.123Z')"
        #expect(try evaluate("\(ts).getFullYear()") == .int(2024))
        #expect(try evaluate("\(ts).getMonth()") == .int(2))
        #expect(try evaluate("\(ts).getDayOfMonth()") == .int(9))
        #expect(try evaluate("\(ts).getDate()") == .int(10))
        #expect(try evaluate("\(ts).getDayOfWeek()") == .int(0))
        #expect(try evaluate("\(ts).getDayOfYear()") == .int(69))
        #expect(try evaluate("\(ts).getHours()") == .int(7))
        #expect(try evaluate("\(ts).getMinutes()") == .int(30))
        #expect(try evaluate("\(ts).getSeconds()") == .int(45))
        #expect(try evaluate("\(ts).getMilliseconds()") == .int(123))
        #expect(try evaluate("\(ts).getHours('America/New_York')") == .int(3))
        #expect(try evaluate("\(ts).getHours('+05:30')") == .int(13))
        #expect(try evaluate("\(ts).getDate('-08:00')") == .int(9))
        #expect(errorKind("\(ts).getHours('Mars/Olympus')") == .invalidArgument)
    }

    @Test("durations parse Go syntax and have accessors")
    func durations() throws {
        #expect(try evaluate("string(duration('1h2m3.5s'))") == .string("3723.5s"))
        #expect(try evaluate("duration('-1.5h').getMinutes()") == .int(-90))
        #expect(try evaluate("duration('300ms').getMilliseconds()") == .int(300))
        #expect(try evaluate("duration('1us') + duration('1ns') == duration('1001ns')") == .bool(true))
        #expect(errorKind("duration('1x')") == .invalidArgument)
        #expect(errorKind("duration('3000000h')") == .invalidArgument)
    }

    @Test("standard string functions and regex matching")
    func strings() throws {
        #expect(
            try evaluate(
                "'kubectl exec'.contains('exec') && 'psql -c'.startsWith('psql') && 'a.yaml'.endsWith('.yaml')")
                == .bool(true))
        #expect(try evaluate("'rm -rf /'.matches('\\\\brm\\\\s+-[a-z]*r[a-z]*f')") == .bool(true))
        #expect(try evaluate("matches('abc', '^b')") == .bool(false))
        #expect(errorKind("'a'.matches('(')") == .invalidArgument)
    }

    @Test("strings extension")
    func stringsExtension() throws {
        #expect(try evaluate("'héllo'.charAt(1)") == .string("é"))
        #expect(try evaluate("'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3") == .bool(true))
        #expect(try evaluate("'MiXeD'.lowerAscii() + 'MiXeD'.upperAscii()") == .string("mixedMIXED"))
        #expect(try evaluate("'a-b-c'.replace('-', '+', 1)") == .string("a+b-c"))
        #expect(try evaluate("'a,b,c'.split(',')") == .list(["a", "b", "c"]))
        #expect(try evaluate("'tacocat'.substring(1, 3)") == .string("ac"))
        #expect(try evaluate("'  x \\n'.trim()") == .string("x"))
        #expect(try evaluate("['a', 'b'].join('/')") == .string("a/b"))
        #expect(try evaluate("'abc'.reverse()") == .string("cba"))
        #expect(try evaluate("strings.quote('a\"b')") == .string("\"a\\\"b\""))
        #expect(try evaluate("'%s has %d pods (%.1f%%)'.format(['ns', 3, 12.34])") == .string("ns has 3 pods (12.3%)"))
        #expect(errorKind("'abc'.substring(2, 1)") == .invalidArgument)
        #expect(errorKind("'%d'.format(['x'])") == .invalidArgument)
    }

    @Test("lists extensions: Kubernetes and cel-go")
    func lists() throws {
        #expect(try evaluate("[1, 2, 2].isSorted() && ![2, 1].isSorted()") == .bool(true))
        #expect(try evaluate("[1, 2, 3].sum()") == .int(6))
        #expect(try evaluate("[3, 1, 2].min() + [3, 1, 2].max()") == .int(4))
        #expect(try evaluate("[1, 2, 1].indexOf(1) + [1, 2, 1].lastIndexOf(1)") == .int(2))
        #expect(try evaluate("[1, 2, 3, 4].slice(1, 3)") == .list([2, 3]))
        #expect(try evaluate("[1, [2, [3]]].flatten()") == .list([1, 2, [3]]))
        #expect(try evaluate("[3, 1, 2].sort()") == .list([1, 2, 3]))
        #expect(try evaluate("[1, 2, 1].distinct()") == .list([1, 2]))
        #expect(try evaluate("lists.range(3)") == .list([0, 1, 2]))
        #expect(
            try evaluate("sets.contains([1, 2], [2]) && sets.intersects([1], [1, 3]) && sets.equivalent([1, 1], [1])")
                == .bool(true))
        #expect(errorKind("[].min()") == .invalidArgument)
        #expect(errorKind("[9223372036854775807, 1].sum()") == .overflow)
    }

    @Test("regex find and findAll")
    func regex() throws {
        #expect(try evaluate("'abc 123 def 456'.find('[0-9]+')") == .string("123"))
        #expect(try evaluate("'abc 123 def 456'.findAll('[0-9]+')") == .list(["123", "456"]))
        #expect(try evaluate("'a1b2c3'.findAll('[0-9]', 2)") == .list(["1", "2"]))
        #expect(try evaluate("'xyz'.find('[0-9]')") == .string(""))
    }

    @Test("URLs")
    func urls() throws {
        let url = "url('https://user@example.com:8443/a%20b/c?x=1&x=2&y=z')"
        #expect(try evaluate("\(url).getScheme()") == .string("https"))
        #expect(try evaluate("\(url).getHost()") == .string("example.com:8443"))
        #expect(try evaluate("\(url).getHostname()") == .string("example.com"))
        #expect(try evaluate("\(url).getPort()") == .string("8443"))
        #expect(try evaluate("\(url).getEscapedPath()") == .string("/a%20b/c"))
        #expect(try evaluate("\(url).getQuery()") == ["x": ["1", "2"], "y": ["z"]])
        #expect(try evaluate("url('https://[::1]:80/').getHostname()") == .string("::1"))
        #expect(try evaluate("isURL('/relative/ok') && !isURL('not a url') && !isURL('x')") == .bool(true))
    }

    @Test("IP addresses and CIDRs")
    func network() throws {
        #expect(try evaluate("ip('10.0.0.1').family() == 4 && ip('::1').family() == 6") == .bool(true))
        #expect(try evaluate("ip('127.0.0.1').isLoopback() && ip('::1').isLoopback()") == .bool(true))
        #expect(try evaluate("ip('0.0.0.0').isUnspecified() && ip('fe80::1').isLinkLocalUnicast()") == .bool(true))
        #expect(
            try evaluate("ip('224.0.0.1').isLinkLocalMulticast() && ip('8.8.8.8').isGlobalUnicast()") == .bool(true))
        #expect(try evaluate("string(ip('2001:DB8::0:1'))") == .string("2001:db8::1"))
        #expect(try evaluate("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')") == .bool(true))
        #expect(
            try evaluate("cidr('10.0.0.0/8').containsIP(ip('10.2.3.4')) && !cidr('10.0.0.0/8').containsIP('11.0.0.1')")
                == .bool(true))
        #expect(try evaluate("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')") == .bool(true))
        #expect(try evaluate("cidr('192.168.1.5/24').masked() == cidr('192.168.1.0/24')") == .bool(true))
        #expect(try evaluate("cidr('192.168.1.5/24').prefixLength()") == .int(24))
        #expect(try evaluate("string(cidr('192.168.1.5/24').ip())") == .string("192.168.1.5"))
        #expect(
            try evaluate("!isIP('01.2.3.4') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0') && isCIDR('::/0')")
                == .bool(true))
    }

    @Test("quantities")
    func quantities() throws {
        #expect(try evaluate("quantity('1Gi').asInteger()") == .int(1_073_741_824))
        #expect(try evaluate("quantity('500m').asApproximateFloat()") == .double(0.5))
        #expect(try evaluate("quantity('1').isGreaterThan(quantity('999m'))") == .bool(true))
        #expect(try evaluate("quantity('1k').compareTo(quantity('1000'))") == .int(0))
        #expect(try evaluate("quantity('1.5').add(quantity('500m')).isInteger()") == .bool(true))
        #expect(try evaluate("quantity('2').sub(3).sign()") == .int(-1))
        #expect(try evaluate("quantity('1e3').asInteger()") == .int(1000))
        #expect(try evaluate("isQuantity('10Mi') && !isQuantity('10 Mi')") == .bool(true))
        #expect(errorKind("quantity('500m').asInteger()") == .overflow)
    }

    @Test("math and base64 extensions")
    func mathAndEncoders() throws {
        #expect(try evaluate("math.greatest(1, 2.5, 2u)") == .double(2.5))
        #expect(try evaluate("math.least([3, -1, 2])") == .int(-1))
        #expect(try evaluate("math.ceil(1.2) + math.floor(1.8) + math.round(2.5) + math.trunc(-1.7)") == .double(5))
        #expect(try evaluate("math.abs(-3) + math.sign(-9)") == .int(2))
        #expect(try evaluate("math.isNaN(0.0 / 0.0) && math.isInf(1.0 / 0.0) && math.isFinite(1.0)") == .bool(true))
        #expect(try evaluate("math.bitAnd(6, 3) + math.bitOr(4, 1) + math.bitXor(3, 1) + math.bitNot(0)") == .int(8))
        #expect(try evaluate("math.bitShiftLeft(1, 4) + math.bitShiftRight(256, 4)") == .int(32))
        #expect(try evaluate("base64.encode(b'hello')") == .string("aGVsbG8="))
        #expect(try evaluate("base64.decode('aGVsbG8')") == .bytes(Array("hello".utf8)))
        #expect(errorKind("math.abs(-9223372036854775808)") == .overflow)
        #expect(errorKind("base64.decode('!!')") == .invalidArgument)
    }

    @Test("optionals")
    func optionals() throws {
        let object: CELValue = ["spec": ["replicas": 3]]
        #expect(try evaluate("o.?spec.?replicas.orValue(1)", ["o": object]) == .int(3))
        #expect(try evaluate("o.?status.?ready.orValue(false)", ["o": object]) == .bool(false))
        #expect(try evaluate("o.spec[?'missing'].hasValue()", ["o": object]) == .bool(false))
        #expect(try evaluate("optional.of(1).optMap(x, x + 1).value()") == .int(2))
        #expect(try evaluate("optional.none().or(optional.of(2)).value()") == .int(2))
        #expect(try evaluate("optional.ofNonZeroValue('').hasValue()") == .bool(false))
        #expect(try evaluate("[?optional.none(), ?optional.of(1)]") == .list([1]))
        #expect(try evaluate("{?'a': optional.none(), 'b': 2}") == ["b": 2])
        #expect(errorKind("optional.none().value()") == .invalidArgument)
    }
}
