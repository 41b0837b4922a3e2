import Testing

@testable import Policy

@Suite("CEL evaluation semantics")
struct CELEvaluatorTests {
    @Test("int and uint arithmetic overflows and divisions by zero are errors")
    func integerErrors() {
        #expect(errorKind("9223372036854775807 + 1") == .overflow)
        #expect(errorKind("-9223372036854775808 - 1") == .overflow)
        #expect(errorKind("x * 2", ["x": .int(.max)]) == .overflow)
        #expect(errorKind("-x", ["x": .int(.min)]) == .overflow)
        #expect(errorKind("x / -1", ["x": .int(.min)]) == .overflow)
        #expect(errorKind("0u - 1u") == .overflow)
        #expect(errorKind("1 / 0") == .divideByZero)
        #expect(errorKind("1 % 0") == .divideByZero)
        #expect(errorKind("1u / 0u") == .divideByZero)
        #expect(errorKind("1 + 1u") == .noSuchOverload)
    }

    @Test("division truncates and doubles follow IEEE 754")
    func arithmetic() throws {
        #expect(try evaluate("-7 / 2") == .int(-3))
        #expect(try evaluate("-7 % 2") == .int(-1))
        #expect(try evaluate("1.0 / 0.0") == .double(.infinity))
        #expect(try evaluate("2.5 * 2.0") == .double(5))
    }

    @Test("numbers compare by value across int, uint and double")
    func heterogeneousNumbers() throws {
        #expect(try evaluate("1 == 1u && 1u == 1.0 && 1 == 1.0") == .bool(true))
        #expect(try evaluate("-1 < 0u") == .bool(true))
        #expect(try evaluate("2 > 1.5 && 1u < 1.5") == .bool(true))
        #expect(try evaluate("18446744073709551615u > 9223372036854775807") == .bool(true))
        #expect(try evaluate("[1, 2] == [1.0, 2u]") == .bool(true))
        #expect(try evaluate("{1: 'a'}[1u] == 'a' && {1: 'a'}[1.0] == 'a'") == .bool(true))
        #expect(try evaluate("double('NaN') == double('NaN')") == .bool(false))
        #expect(try evaluate("1 == 'a'") == .bool(false))
    }

    @Test("&& and || absorb errors commutatively")
    func errorAbsorption() throws {
        #expect(try evaluate("false && 1 / 0 == 1") == .bool(false))
        #expect(try evaluate("1 / 0 == 1 && false") == .bool(false))
        #expect(try evaluate("true || 1 / 0 == 1") == .bool(true))
        #expect(try evaluate("1 / 0 == 1 || true") == .bool(true))
        #expect(errorKind("1 / 0 == 1 && true") == .divideByZero)
        #expect(errorKind("x.missing || false", ["x": [:]]) == .noSuchKey)
        #expect(try evaluate("[0, 1].exists(x, 1 / x == 1)") == .bool(true))
        #expect(try evaluate("[0, 1].all(x, 1 / x == 2)") == .bool(false))
        #expect(errorKind("[0, 1].all(x, 1 / x == 1)") == .divideByZero)
    }

    @Test("ternaries, negation and in")
    func operators() throws {
        #expect(try evaluate("true ? 'a' : 1 / 0") == .string("a"))
        #expect(errorKind("1 ? 2 : 3") == .noSuchOverload)
        #expect(try evaluate("!false") == .bool(true))
        #expect(try evaluate("2 in [1, 2] && 'a' in {'a': 1} && !(3 in [1])") == .bool(true))
    }

    @Test("lists index by int, uint and integral double")
    func listIndexing() throws {
        #expect(try evaluate("[1, 2, 3][1]") == .int(2))
        #expect(try evaluate("[1, 2, 3][2u]") == .int(3))
        #expect(try evaluate("[1, 2, 3][0.0]") == .int(1))
        #expect(errorKind("[1][1]") == .noSuchKey)
        #expect(errorKind("[1][-1]") == .noSuchKey)
        #expect(errorKind("[1][0.5]") == .invalidArgument)
    }

    @Test("field selection and has() on maps")
    func maps() throws {
        let object: CELValue = ["metadata": ["name": "web", "labels": ["team": "a"]]]
        #expect(try evaluate("o.metadata.name", ["o": object]) == .string("web"))
        #expect(try evaluate("has(o.metadata.labels.team)", ["o": object]) == .bool(true))
        #expect(try evaluate("has(o.metadata.annotations)", ["o": object]) == .bool(false))
        #expect(errorKind("o.spec", ["o": object]) == .noSuchKey)
        #expect(errorKind("o.metadata.name.first", ["o": object]) == .noSuchOverload)
        #expect(errorKind("{'a': 1, 'a': 2}") == .invalidArgument)
        #expect(try evaluate("{'a': [1], 'b': {'c': true}} == {'b': {'c': true}, 'a': [1]}") == .bool(true))
    }

    @Test("unbound variables are errors")
    func unboundVariables() {
        #expect(errorKind("x + 1", [:]) == .noSuchAttribute)
        let program = try? CELEnvironment(variables: ["x": .dyn], enableChecker: false).compile("x")
        #expect(throws: CELError.self) { try program?.evaluate(CELActivation()) }
    }

    @Test("type() and dyn()")
    func types() throws {
        #expect(try evaluate("type(1) == int && type('a') == string && type([]) == list") == .bool(true))
        #expect(try evaluate("type(type(1)) == type") == .bool(true))
        #expect(try evaluate("type(duration('1s')) == google.protobuf.Duration") == .bool(true))
        #expect(try evaluate("dyn(1) + 2") == .int(3))
    }

    @Test("conversions with range checks")
    func conversions() throws {
        #expect(try evaluate("int('-42')") == .int(-42))
        #expect(try evaluate("int(3.9)") == .int(3))
        #expect(try evaluate("uint(42)") == .uint(42))
        #expect(try evaluate("double(5)") == .double(5))
        #expect(try evaluate("string(1.5)") == .string("1.5"))
        #expect(try evaluate("string(b'abc')") == .string("abc"))
        #expect(try evaluate("bytes('a')") == .bytes([97]))
        #expect(try evaluate("bool('true')") == .bool(true))
        #expect(errorKind("int(1e20)") == .overflow)
        #expect(errorKind("uint(-1)") == .overflow)
        #expect(errorKind("int(18446744073709551615u)") == .overflow)
        #expect(errorKind("int('x')") == .invalidArgument)
        #expect(errorKind("string(b'\\xff')") == .invalidArgument)
    }

    @Test("size counts code points, bytes, elements and entries")
    func size() throws {
        #expect(try evaluate("size('héllo')") == .int(5))
        #expect(try evaluate("size(b'h\\xc3\\xa9')") == .int(3))
        #expect(try evaluate("[1, 2].size() + size({'a': 1})") == .int(3))
        #expect(errorKind("size(1)") == .noSuchOverload)
    }

    @Test("+ concatenates strings, bytes and lists")
    func concatenation() throws {
        #expect(try evaluate("'a' + 'b'") == .string("ab"))
        #expect(try evaluate("b'a' + b'b'") == .bytes([97, 98]))
        #expect(try evaluate("[1] + [2]") == .list([1, 2]))
    }

    @Test("strings compare by code points without Unicode normalization")
    func stringEquality() throws {
        #expect(try evaluate("'\\u00e9' == 'e\\u0301'") == .bool(false))
        #expect(try evaluate("{'\\u00e9': 1}[x]", ["x": "\u{e9}"]) == .int(1))
        #expect(errorKind("{'\\u00e9': 1}[x]", ["x": "e\u{301}"]) == .noSuchKey)
    }

    @Test("comprehension macros over lists and maps")
    func comprehensions() throws {
        #expect(try evaluate("[1, 2, 3].filter(x, x % 2 == 1)") == .list([1, 3]))
        #expect(try evaluate("{'a': 1, 'b': 2}.map(k, k)") == .list(["a", "b"]))
        #expect(try evaluate("{'a': 1, 'b': 2}.exists_one(k, k == 'b')") == .bool(true))
        #expect(try evaluate("[1, 2].all(i, v, v > i)") == .bool(true))
        #expect(try evaluate("{'a': 1}.transformMap(k, v, v + 1)") == ["a": 2])
        #expect(try evaluate("[3, 1, 2].sortBy(x, -x)") == .list([3, 2, 1]))
        #expect(try evaluate("[[1, 2], [3]].map(l, l.map(x, x * 2))") == .list([[2, 4], [6]]))
    }
}
