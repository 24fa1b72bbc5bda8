import ChatmailCrypto

extension ShadowsocksCredential {
    /// The SIP002 link Delta Chat's client (shadowsocks crate `ServerConfig::from_url`) reads: for SIP004
    /// methods the userinfo is base64url without padding of `method:password`; for SIP022 methods it is
    /// `method:percent-encoded-PSK`, never base64. IPv6 hosts go in brackets; the tag is percent-encoded.
    public func link(host: String, port: UInt16, tag: String? = nil) -> String {
        let userinfo =
            method.is2022
            ? "\(method.rawValue):\(Self.percentEncoded(keyText))"
            : Crypto.base64URL(Array("\(method.rawValue):\(keyText)".utf8))
        let authority = host.contains(":") ? "[\(host)]" : host
        let fragment = tag.map { "#" + Self.percentEncoded($0) } ?? ""
        return "ss://\(userinfo)@\(authority):\(port)\(fragment)"
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
