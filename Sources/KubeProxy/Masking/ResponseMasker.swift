import Foundation
import NIOCore
import Policy

/// Masks the fields Mask rules name in JSON responses: single objects, lists (`items[*]`),
/// tables (`rows[*].object`) and watch events (`object`, one JSON document per line), so that
/// `kubectl get secret -o yaml`, `-o json`, plain `get` and `get -w` all show masked values.
///
/// Whole documents are buffered (a watch stream one event at a time): masking needs the complete
/// JSON. A document that cannot be parsed is dropped, never passed on unmasked.
final class ResponseMasker {
    private let masks: [Decision.Mask]
    private let streaming: Bool
    private var pending = Data()

    /// The largest single JSON document buffered for masking.
    static let maximumDocumentBytes = 64 * 1024 * 1024

    init(masks: [Decision.Mask], streaming: Bool) {
        self.masks = masks
        self.streaming = streaming
    }

    /// Takes a body chunk; returns what can be sent now.
    func append(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> [ByteBuffer] {
        pending.append(contentsOf: buffer.readableBytesView)
        guard pending.count <= Self.maximumDocumentBytes else {
            pending = Data()
            return []
        }
        guard streaming else { return [] }
        var output: [ByteBuffer] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[pending.startIndex..<newline]
            pending.removeSubrange(pending.startIndex...newline)
            if let masked = maskDocument(Data(line)) {
                var buffer = allocator.buffer(capacity: masked.count + 1)
                buffer.writeBytes(masked)
                buffer.writeInteger(UInt8(ascii: "\n"))
                output.append(buffer)
            }
        }
        return output
    }

    /// The rest, at the end of the response.
    func finish(allocator: ByteBufferAllocator) -> [ByteBuffer] {
        defer { pending = Data() }
        let trimmed = pending.filter { !($0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: " ")) }
        guard !trimmed.isEmpty, let masked = maskDocument(pending) else { return [] }
        var buffer = allocator.buffer(capacity: masked.count)
        buffer.writeBytes(masked)
        if streaming { buffer.writeInteger(UInt8(ascii: "\n")) }
        return [buffer]
    }

    func maskDocument(_ data: Data) -> Data? {
        guard var document = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        document = JSONFieldMasker.maskDocument(document, masks: masks.map(\.spec))
        return try? JSONSerialization.data(withJSONObject: document, options: [.withoutEscapingSlashes])
    }
}

/// Field masking on parsed JSON.
enum JSONFieldMasker {
    /// Applies the masks to an API response document, looking inside lists, tables and watch
    /// events for the objects themselves.
    static func maskDocument(_ document: [String: Any], masks: [AccessPolicy.Mask]) -> [String: Any] {
        var document = document
        if let type = document["type"] as? String, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"].contains(type),
            let object = document["object"] as? [String: Any]
        {
            document["object"] = maskDocument(object, masks: masks)
            return document
        }
        let kind = document["kind"] as? String ?? ""
        if kind == "Table", var rows = document["rows"] as? [[String: Any]] {
            for index in rows.indices {
                if let object = rows[index]["object"] as? [String: Any] {
                    rows[index]["object"] = maskDocument(object, masks: masks)
                }
            }
            document["rows"] = rows
            return document
        }
        if kind.hasSuffix("List"), var items = document["items"] as? [[String: Any]] {
            for index in items.indices {
                items[index] = maskObject(items[index], masks: masks, kind: String(kind.dropLast(4)))
            }
            document["items"] = items
            return document
        }
        return maskObject(document, masks: masks, kind: kind)
    }

    static func maskObject(_ object: [String: Any], masks: [AccessPolicy.Mask], kind: String) -> [String: Any] {
        var result: Any = object
        let isSecret = (object["kind"] as? String ?? kind) == "Secret"
        for mask in masks {
            for path in mask.fields {
                // Secret data values must stay base64, or typed clients cannot decode the Secret.
                let replacement: Any =
                    isSecret && path.segments.first == .key("data")
                    ? Data(mask.replacement.utf8).base64EncodedString() : mask.replacement
                result = apply(path.segments[...], to: result, replacement: replacement)
            }
        }
        return result as? [String: Any] ?? object
    }

    private static func apply(_ segments: ArraySlice<FieldPath.Segment>, to value: Any, replacement: Any) -> Any {
        guard let segment = segments.first else { return replacement }
        let rest = segments.dropFirst()
        switch segment {
        case .key(let key):
            guard var map = value as? [String: Any], let child = map[key] else { return value }
            map[key] = apply(rest, to: child, replacement: replacement)
            return map
        case .anyKey:
            guard var map = value as? [String: Any] else { return value }
            for (key, child) in map { map[key] = apply(rest, to: child, replacement: replacement) }
            return map
        case .anyElement:
            guard let list = value as? [Any] else { return value }
            return list.map { apply(rest, to: $0, replacement: replacement) }
        case .element(let index):
            guard var list = value as? [Any], list.indices.contains(index) else { return value }
            list[index] = apply(rest, to: list[index], replacement: replacement)
            return list
        }
    }
}
