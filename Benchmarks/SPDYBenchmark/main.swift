// SPDY codec benchmark: DATA frame decode/encode throughput against a plain memcpy of the same
// bytes, allocations per DATA frame, and header-block compression cost. Run in release:
//   swift run -c release SPDYBenchmark
// Allocations are counted by re-running this program under glibc's mtrace (libc_malloc_debug.so),
// which logs every malloc, realloc and free made between mtrace() and muntrace().
import Foundation
import NIOCore
import SPDY

let frameSize = 32 * 1024
let framesPerBuffer = 2048  // 64 MiB of payload per pass
let passes = 8

func makeWire(frames: Int) -> ByteBuffer {
    var encoder = SPDYFrameEncoder()
    var wire = ByteBufferAllocator().buffer(capacity: frames * (frameSize + 8))
    let payload = ByteBuffer(repeating: 0xA5, count: frameSize)
    for index in 0..<frames {
        let frame = SPDYDataFrame(streamID: SPDYStreamID(UInt32(index % 7) * 2 + 1), data: payload)
        try! encoder.encode(.data(frame), into: &wire)
    }
    return wire
}

/// Best of `rounds` timings of `body`, in seconds.
func measure(rounds: Int = 5, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
    return best
}

@inline(never)
func blackHole(_ value: Int) {
    if value == 42_424_242 { print("") }
}

/// Decodes every frame of `wire`, in one append (the whole buffer) or in socket-sized reads.
@inline(never)
func decodeAll(_ wire: ByteBuffer, readSize: Int?) -> Int {
    var decoder = SPDYFrameDecoder()
    var total = 0
    func drain() {
        while let frame = try! decoder.nextFrame() {
            if case .data(let data) = frame { total &+= data.data.readableBytes }
        }
    }
    if let readSize {
        var offset = 0
        while offset < wire.readableBytes {
            let length = min(readSize, wire.readableBytes - offset)
            decoder.append(wire.getSlice(at: wire.readerIndex + offset, length: length)!)
            drain()
            offset += length
        }
    } else {
        decoder.append(wire)
        drain()
    }
    return total
}

@inline(never)
func encodeAll(frames: Int, into buffer: inout ByteBuffer, encoder: inout SPDYFrameEncoder, payload: ByteBuffer) {
    for index in 0..<frames {
        buffer.clear()
        let frame = SPDYDataFrame(streamID: SPDYStreamID(UInt32(index % 7) * 2 + 1), data: payload)
        try! encoder.encode(.data(frame), into: &buffer)
    }
}

@inline(never)
func memcpyAll(frames: Int, source: UnsafeRawBufferPointer, destination: UnsafeMutableRawBufferPointer) {
    for _ in 0..<frames {
        destination.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count)
    }
}

let headerBlock: SPDYHeaders = ["streamtype": "data", "port": "8080", "requestid": "12"]

func headerFrames(count: Int) -> ByteBuffer {
    var encoder = SPDYFrameEncoder()
    var wire = ByteBuffer()
    for index in 0..<count {
        let syn = SPDYSynStreamFrame(streamID: SPDYStreamID(UInt32(index) * 2 + 1), headers: headerBlock)
        try! encoder.encode(.synStream(syn), into: &wire)
    }
    return wire
}

// MARK: - Allocation counting (child process under mtrace)

typealias TraceFunction = @convention(c) () -> Void

func countAllocations(label: String, iterations: Int, _ body: () -> Void) -> Double {
    let path = ProcessInfo.processInfo.environment["MALLOC_TRACE"]!
    guard let start = dlsym(dlopen(nil, RTLD_NOW), "mtrace"),
        let stop = dlsym(dlopen(nil, RTLD_NOW), "muntrace")
    else {
        print("mtrace unavailable")
        exit(2)
    }
    try? FileManager.default.removeItem(atPath: path)
    unsafeBitCast(start, to: TraceFunction.self)()
    body()
    unsafeBitCast(stop, to: TraceFunction.self)()
    let trace = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    // "+ addr size" is a malloc, "> addr size" the new block of a realloc.
    let allocations = trace.split(separator: "\n").filter { $0.contains(" + ") || $0.contains(" > ") }.count
    return Double(allocations) / Double(iterations)
}

func allocationChild() {
    let iterations = 1000
    let wire = makeWire(frames: iterations)
    let payload = ByteBuffer(repeating: 1, count: frameSize)
    var encoder = SPDYFrameEncoder()
    var output = ByteBufferAllocator().buffer(capacity: frameSize + 64)
    encodeAll(frames: 1, into: &output, encoder: &encoder, payload: payload)  // warm up lazily created state
    _ = decodeAll(makeWire(frames: 2), readSize: nil)

    // The decoder itself (its zlib context and first buffer) is created once per connection: not per frame.
    var decoder = SPDYFrameDecoder()
    decoder.append(wire)
    var total = 0
    let decodePerFrame = countAllocations(label: "decode", iterations: iterations) {
        while let frame = try! decoder.nextFrame() {
            if case .data(let data) = frame { total &+= data.data.readableBytes }
        }
    }
    blackHole(total)
    let encodePerFrame = countAllocations(label: "encode", iterations: iterations) {
        encodeAll(frames: iterations, into: &output, encoder: &encoder, payload: payload)
    }
    print("ALLOC decode \(decodePerFrame) encode \(encodePerFrame)")
}

// MARK: - Main

if CommandLine.arguments.contains("--count-allocations") {
    allocationChild()
    exit(0)
}

let wire = makeWire(frames: framesPerBuffer)
let payloadBytes = Double(framesPerBuffer * frameSize * passes)
func gigabytesPerSecond(_ seconds: Double) -> Double { payloadBytes / seconds / 1e9 }

let memcpySeconds: Double = {
    let source = UnsafeMutableRawBufferPointer.allocate(byteCount: frameSize, alignment: 64)
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: frameSize, alignment: 64)
    source.initializeMemory(as: UInt8.self, repeating: 0xA5)
    defer {
        source.deallocate()
        destination.deallocate()
    }
    return measure {
        for _ in 0..<passes {
            memcpyAll(frames: framesPerBuffer, source: UnsafeRawBufferPointer(source), destination: destination)
        }
    }
}()
/// memcpy of the same 64 MiB the decoder walks, 32 KiB at a time, into another 64 MiB (out of cache).
let streamingMemcpySeconds: Double = {
    let length = framesPerBuffer * frameSize
    let source = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 64)
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 64)
    source.initializeMemory(as: UInt8.self, repeating: 0xA5)
    destination.initializeMemory(as: UInt8.self, repeating: 0)
    defer {
        source.deallocate()
        destination.deallocate()
    }
    return measure {
        for _ in 0..<passes {
            for offset in stride(from: 0, to: length, by: frameSize) {
                (destination.baseAddress! + offset).copyMemory(from: source.baseAddress! + offset, byteCount: frameSize)
            }
        }
    }
}()
let decodeSeconds = measure {
    for _ in 0..<passes { blackHole(decodeAll(wire, readSize: nil)) }
}
let decodeChunkedSeconds = measure {
    for _ in 0..<passes { blackHole(decodeAll(wire, readSize: 64 * 1024)) }
}
let encodeSeconds: Double = {
    var encoder = SPDYFrameEncoder()
    var output = ByteBufferAllocator().buffer(capacity: frameSize + 64)
    let payload = ByteBuffer(repeating: 1, count: frameSize)
    return measure {
        for _ in 0..<passes { encodeAll(frames: framesPerBuffer, into: &output, encoder: &encoder, payload: payload) }
    }
}()

let headerCount = 20_000
var compressedHeaders = ByteBuffer()
let compressSeconds = measure(rounds: 3) { compressedHeaders = headerFrames(count: headerCount) }
let decompressSeconds = measure(rounds: 3) {
    var decoder = SPDYFrameDecoder()
    decoder.append(compressedHeaders)
    var count = 0
    while let frame = try! decoder.nextFrame() {
        if case .synStream = frame { count += 1 }
    }
    precondition(count == headerCount)
}

print(
    "SPDY codec benchmark (\(framesPerBuffer * passes) DATA frames of \(frameSize / 1024) KiB per measurement, best of 5)"
)
print(String(format: "  memcpy, 32 KiB hot in cache %6.2f GB/s", gigabytesPerSecond(memcpySeconds)))
print(
    String(
        format: "  memcpy, 64 MiB streaming   %7.2f GB/s  (baseline for the ratios)",
        gigabytesPerSecond(streamingMemcpySeconds)))
print(
    String(
        format: "  decode, one 64 MiB buffer  %7.2f GB/s  (%.2fx memcpy)", gigabytesPerSecond(decodeSeconds),
        streamingMemcpySeconds / decodeSeconds))
print(
    String(
        format: "  decode, 64 KiB reads       %7.2f GB/s  (%.2fx memcpy)", gigabytesPerSecond(decodeChunkedSeconds),
        streamingMemcpySeconds / decodeChunkedSeconds))
print(
    String(
        format: "  encode (header + copy)     %7.2f GB/s  (%.2fx the hot memcpy: it copies into one reused buffer)",
        gigabytesPerSecond(encodeSeconds),
        memcpySeconds / encodeSeconds))
print(
    String(
        format: "  header block %d bytes plain: compress %.2f µs, decompress %.2f µs per SYN_STREAM",
        4 + headerBlock.pairs.reduce(0) { $0 + 8 + $1.name.utf8.count + $1.value.utf8.count },
        compressSeconds / Double(headerCount) * 1e6, decompressSeconds / Double(headerCount) * 1e6))

// Allocations: re-run this binary under mtrace.
let debugMalloc = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
if FileManager.default.fileExists(atPath: debugMalloc) {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    child.arguments = ["--count-allocations"]
    var environment = ProcessInfo.processInfo.environment
    environment["LD_PRELOAD"] = debugMalloc
    environment["MALLOC_TRACE"] = NSTemporaryDirectory() + "spdy-benchmark-mtrace-\(getpid()).log"
    child.environment = environment
    let pipe = Pipe()
    child.standardOutput = pipe
    try child.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    child.waitUntilExit()
    try? FileManager.default.removeItem(atPath: environment["MALLOC_TRACE"]!)
    let fields = output.split(separator: " ")
    if fields.count >= 5, fields[0] == "ALLOC" {
        print(
            "  allocations per DATA frame: decode \(fields[2]), encode \(fields[4].trimmingCharacters(in: .newlines))")
    } else {
        print("  allocation count failed: \(output)")
    }
} else {
    print("  allocations per DATA frame: not measured (\(debugMalloc) missing)")
}
