import ChatmailTestSupport
import Foundation
import Testing

@testable import ChatmailQR

@Suite struct QRCodeTests {
    /// ISO/IEC 18004 Annex I: the 16 data codewords of "01234567" at 1-M and their 10 EC codewords.
    @Test func reedSolomonMatchesTheStandardsExample() {
        let data: [UInt8] = [
            0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11,
        ]
        #expect(
            ReedSolomon.remainder(of: data, degree: 10) == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55])
    }

    /// The standard's table of format information for level M, masks 0 to 7.
    @Test func formatBitsMatchTheStandardsTable() {
        let table = [
            "101010000010010", "101000100100101", "101111001111100", "101101101001011",
            "100010111111001", "100000011001110", "100111110010111", "100101010100000",
        ]
        #expect((0..<8).map { String(QRCode.formatBits(mask: $0), radix: 2) } == table)
    }

    @Test func capacitiesAndTheSmallestVersion() throws {
        #expect((1...10).map(QRCode.capacity(version:)) == [14, 26, 42, 62, 84, 106, 122, 152, 180, 213])
        #expect(try QRCode(encoding: String(repeating: "a", count: 14)).version == 1)
        #expect(try QRCode(encoding: String(repeating: "a", count: 15)).version == 2)
        #expect(try QRCode(encoding: String(repeating: "a", count: 213)).version == 10)
        #expect(throws: QRCode.Failure.tooLong(bytes: 214, maximum: 213)) {
            try QRCode(encoding: String(repeating: "a", count: 214))
        }
    }

    @Test func theRenderingDrawsEveryModule() throws {
        let code = try QRCode(encoding: "ss://2022-blake3-aes-128-gcm:key@chat.example.org:443")
        let lines = code.render(quietZone: 2).split(separator: "\n").map { Array($0) }
        let extent = code.size + 4
        #expect(lines.count == (extent + 1) / 2 && lines.allSatisfy { $0.count == extent })
        for row in 0..<code.size {
            for column in 0..<code.size {
                let cell = lines[(row + 2) / 2][column + 2]
                let top = (row + 2) % 2 == 0
                let drawn = top ? (cell == "█" || cell == "▀") : (cell == "█" || cell == "▄")
                #expect(drawn == !code.modules[row][column])  // light modules are drawn
            }
        }
    }

    // MARK: - Against independent implementations

    static let samples = [
        "a", "ss://YWVzLTEyOC1nY206c2VjcmV0@127.0.0.1:8388#chatmail",
        "ss://2022-blake3-aes-256-gcm:Aq3vVnq0xJ4rQ%2B1dL2x8%2FQ2pE7y5mZ0hT9kWcB6nYsI%3D@chat.example.org:8388",
        String(repeating: "0123456789abcdef", count: 8), String(repeating: "x", count: 213),
    ]

    /// The PyPI `qrcode` package, given our version and mask, must draw the same modules.
    @Test("Same modules as the Python qrcode package", arguments: samples)
    func matchesPythonQRCode(text: String) throws {
        let code = try QRCode(encoding: text)
        let script = """
            import sys, qrcode, qrcode.util
            qr = qrcode.QRCode(version=\(code.version), error_correction=qrcode.constants.ERROR_CORRECT_M,
                               border=0, mask_pattern=\(code.mask))
            qr.add_data(qrcode.util.QRData(sys.stdin.buffer.read(), mode=qrcode.util.MODE_8BIT_BYTE))
            qr.make(fit=False)
            print("\\n".join("".join("1" if m else "0" for m in row) for row in qr.get_matrix()))
            """
        let output = try run("python3", ["-c", script], input: Data(text.utf8))
        let ours = code.modules.map { $0.map { $0 ? "1" : "0" }.joined() }.joined(separator: "\n")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == ours)
    }

    /// zbar, a real decoder, reads the code back from an image, with the mask our penalty chose.
    @Test("zbarimg decodes it", arguments: samples)
    func zbarDecodes(text: String) throws {
        let code = try QRCode(encoding: text)
        let scale = 4
        let extent = (code.size + 8) * scale
        var image = "P1\n\(extent) \(extent)\n"
        for y in 0..<extent {
            let row = y / scale - 4
            image += (0..<extent).map { x in
                let column = x / scale - 4
                let dark =
                    (0..<code.size).contains(row) && (0..<code.size).contains(column) && code.modules[row][column]
                return dark ? "1" : "0"
            }.joined(separator: " ")
            image += "\n"
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString).pbm")
        try image.write(to: file, atomically: true, encoding: .ascii)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try run("zbarimg", ["--quiet", "--raw", "-Sbinary", file.path])
        #expect(output.hasSuffix("\n") ? String(output.dropLast()) == text : output == text)
    }

    /// Runs `program` from PATH; its standard output. A missing program fails the test with the package to install.
    func run(_ program: String, _ arguments: [String], input: Data = Data()) throws -> String {
        guard let path = ExternalProgram.path(program) else {
            Issue.record("\(program) is not installed: `make test-deps` installs it")
            return ""
        }
        let (status, output) = try ExternalProgram.run(path, arguments, input: Array(input))
        #expect(status == 0, "\(program) \(arguments.joined(separator: " ")) failed")
        return output
    }
}
