import ConvoyEngine
import Foundation

extension Message {
    /// The frame bytes. Tensors are copied as raw little-endian arrays, never per element;
    /// fixed-point gradients as `gradients` says.
    public func encoded(gradients: GradientEncoding = .varint) -> [UInt8] {
        // One buffer, sized up front: the header, then the payload written straight after it.
        var frame = ByteWriter(capacity: Wire.headerSize + payloadCapacity(gradients))
        frame.append(bytes: Wire.magic)
        frame.append(Wire.version)
        frame.append(payload.type.rawValue)
        frame.append(runID)
        frame.append(step)
        frame.append(workerID)
        frame.append(UInt32(0))  // payload length, patched below
        frame.append(UInt64(0))
        switch payload {
        case let .hello(hello): hello.write(to: &frame)
        case let .welcome(welcome): welcome.write(to: &frame)
        case let .step(work):
            frame.append(work.slice)
            frame.append(UInt32((work.evaluate ? 1 : 0) | (work.weights != nil ? 2 : 0)))
            frame.append(UInt32(work.count))
            frame.append(UInt32(work.sampleSize))
            frame.append(UInt32(work.weights?.count ?? 0))
            frame.append(UInt32(work.weightsOffset))
            work.weights?.withUnsafeBytes { frame.append(raw: $0) }
            frame.append(bytes: work.pixels)
            frame.append(bytes: work.labels)
        case let .result(result): ResultCoding.write(result, to: &frame, encoding: gradients)
        case .shutdown: break
        case let .refuse(refusal):
            frame.append(refusal.scope.rawValue)
            frame.append(bytes: Array(refusal.reason.utf8.prefix(Wire.maxControlBytes)))
        case let .stop(reason):
            frame.append(bytes: Array(reason.utf8.prefix(Wire.maxControlBytes)))
        case let .weights(update):
            frame.append(UInt32(update.offset))
            frame.append(UInt32(update.values.count))
            update.values.withUnsafeBytes { frame.append(raw: $0) }
        case .statusRequest: break
        case let .status(report): report.write(to: &frame)
        }
        frame.patch(UInt32(frame.bytes.count - Wire.headerSize), at: 28)
        return frame.bytes
    }

    private func payloadCapacity(_ gradients: GradientEncoding) -> Int {
        switch payload {
        case let .step(work): 24 + 4 * (work.weights?.count ?? 0) + work.pixels.count + work.labels.count
        case let .weights(update): 8 + 4 * update.values.count
        case let .result(result): ResultCoding.capacity(result, encoding: gradients)
        default: 256
        }
    }

    /// Decodes and validates one frame: magic, version, type, exact lengths, every count
    /// against `Wire`'s bounds and the gradient values' finiteness. Never traps: anything
    /// malformed is a `ProtocolError` naming the field.
    public init(decoding frame: [UInt8]) throws {
        guard frame.count >= Wire.headerSize else {
            throw ProtocolError("frame of \(frame.count) bytes is shorter than the \(Wire.headerSize)-byte header")
        }
        guard Array(frame[0..<4]) == Wire.magic else { throw ProtocolError("bad magic: not a convoy message") }
        var reader = ByteReader(frame, name: "message", offset: 4)
        let version = try reader.read(UInt16.self, "version")
        guard version == Wire.version else {
            throw ProtocolError(
                "protocol version \(version) is not supported (this convoy speaks version \(Wire.version))")
        }
        let rawType = try reader.read(UInt16.self, "type")
        guard let type = MessageType(rawValue: rawType) else { throw ProtocolError("unknown message type \(rawType)") }
        runID = try reader.read(UInt64.self, "run id")
        step = try reader.read(UInt64.self, "step")
        guard step < 1 << 48 else { throw ProtocolError("step \(step) is out of range") }
        workerID = try reader.read(UInt32.self, "worker id")
        guard workerID < Wire.maxWorkers else { throw ProtocolError("worker id \(workerID) is out of range") }
        let length = Int(try reader.read(UInt32.self, "payload length"))
        guard try reader.read(UInt64.self, "reserved") == 0 else {
            throw ProtocolError("reserved header bytes are not zero")
        }
        guard length == frame.count - Wire.headerSize else {
            throw ProtocolError(
                "payload length field says \(length) bytes, frame carries \(frame.count - Wire.headerSize)")
        }
        payload = try Self.decodePayload(type, &reader, length: length)
        guard reader.remaining == 0 else {
            throw ProtocolError("\(reader.remaining) unexpected bytes after the \(type) payload")
        }
    }

    // Over 60 lines: one case per message type, so every payload's bounds are read in one place.
    private static func decodePayload(_ type: MessageType, _ reader: inout ByteReader, length: Int) throws -> Payload {
        do {
            switch type {
            case .hello:
                guard length <= Wire.maxControlBytes else {
                    throw ProtocolError("hello payload of \(length) bytes is too large")
                }
                return .hello(try Hello(reading: &reader))
            case .welcome:
                guard length <= Wire.maxControlBytes else {
                    throw ProtocolError("welcome payload of \(length) bytes is too large")
                }
                return .welcome(try Welcome(reading: &reader))
            case .shutdown: return .shutdown
            case .refuse:
                guard length >= 1, length <= 1 + Wire.maxControlBytes else {
                    throw ProtocolError("refuse payload of \(length) bytes is not 1...\(1 + Wire.maxControlBytes)")
                }
                let rawScope = try reader.read(UInt8.self, "scope")
                guard let scope = Refusal.Scope(rawValue: rawScope) else {
                    throw ProtocolError("unknown refusal scope \(rawScope)")
                }
                let reason = String(decoding: try reader.readBytes(length - 1, "reason"), as: UTF8.self)
                return .refuse(Refusal(scope, reason))
            case .stop:
                guard length <= Wire.maxControlBytes else { throw ProtocolError("stop reason too long") }
                return .stop(String(decoding: try reader.readBytes(length, "reason"), as: UTF8.self))
            case .step:
                let slice = try reader.read(UInt32.self, "slice")
                guard slice < Wire.maxWorkers else { throw ProtocolError("slice \(slice) is out of range") }
                let flags = try reader.read(UInt32.self, "flags")
                guard flags & ~3 == 0 else { throw ProtocolError("unknown step flags \(flags)") }
                let count = Int(try reader.read(UInt32.self, "sample count"))
                let sampleSize = Int(try reader.read(UInt32.self, "sample size"))
                let weightCount = Int(try reader.read(UInt32.self, "weight count"))
                let weightOffset = Int(try reader.read(UInt32.self, "weight offset"))
                guard count >= 1, count <= Wire.maxSamples else {
                    throw ProtocolError("sample count \(count) outside 1...\(Wire.maxSamples)")
                }
                guard sampleSize >= 1, sampleSize <= Wire.maxSampleSize else {
                    throw ProtocolError("sample size \(sampleSize) is out of range")
                }
                guard weightCount <= Wire.maxParameters, weightOffset <= Wire.maxParameters - weightCount else {
                    throw ProtocolError("weights \(weightOffset)+\(weightCount) are out of range")
                }
                let hasWeights = flags & 2 != 0
                guard hasWeights || (weightCount == 0 && weightOffset == 0) else {
                    throw ProtocolError("weight count \(weightCount) without the weights flag")
                }
                let expected = 24 + 4 * weightCount + count * sampleSize + count
                guard length == expected else {
                    throw ProtocolError("step payload is \(length) bytes, its counts need \(expected)")
                }
                let weights = hasWeights ? try reader.readFloats(weightCount, "weights") : nil
                if let weights, let bad = FloatChecks.firstNonFinite(weights) {
                    throw ProtocolError("weight \(bad) is \(weights[bad])", runScope: true)
                }
                let pixels = try reader.readBytes(count * sampleSize, "pixels")
                let labels = try reader.readBytes(count, "labels")
                return .step(
                    StepWork(
                        slice: slice, evaluate: flags & 1 != 0, weights: weights, weightsOffset: weightOffset,
                        sampleSize: sampleSize, pixels: pixels, labels: labels))
            case .result:
                return .result(try ResultCoding.read(&reader))
            case .weights:
                return .weights(try decodeWeights(&reader, length: length))
            case .statusRequest: return .statusRequest
            case .status:
                guard length <= Wire.maxControlBytes else {
                    throw ProtocolError("status payload of \(length) bytes is too large")
                }
                return .status(try StatusReport(reading: &reader))
            }
        } catch let error as DataError {
            throw ProtocolError("\(type): \(error.description)")
        }
    }
}
