/// An HTTP/1.1 response head: the status and the headers, names lower-cased.
struct HTTPHead {
    var status: Int
    var headers: [String: String]
}

extension StreamReader {
    /// Sends a request and reads the response head.
    func request(_ text: String, deadline: Deadline) throws(NetError) -> HTTPHead {
        try stream.write(Array(text.utf8), deadline: deadline)
        let statusLine = try readLine(deadline: deadline)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw .protocolError("not HTTP: \(statusLine.prefix(60))")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine(deadline: deadline)
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingSpaces
            }
        }
        return HTTPHead(status: status, headers: headers)
    }

    /// The body after `head`: Content-Length bytes, else up to the close (at most `limit` bytes).
    func body(after head: HTTPHead, deadline: Deadline, limit: Int = 1 << 16) throws(NetError) -> [UInt8] {
        if let length = head.headers["content-length"].flatMap({ Int($0) }) {
            guard length <= limit else { throw .protocolError("a body of \(length) bytes") }
            return try read(exactly: length, deadline: deadline)
        }
        while buffer.count < limit {
            do {
                buffer += try stream.read(deadline: deadline)
            } catch {
                guard case .closed = error else { throw error }
                break
            }
        }
        defer { buffer.removeAll() }
        return Array(buffer.prefix(limit))
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
