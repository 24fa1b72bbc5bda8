/// A QR code (ISO/IEC 18004) for a short text, such as the `ss://` link that Delta Chat scans:
/// byte mode, error correction level M, versions 1 to 10 (up to 213 bytes), the mask chosen by
/// the standard's penalty rules. Written from the standard; `render` draws it for a terminal.
///
///     let code = try QRCode(encoding: "ss://…")
///     print(code.render())
public struct QRCode: Sendable, Equatable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case tooLong(bytes: Int, maximum: Int)

        public var description: String {
            switch self {
            case .tooLong(let bytes, let maximum): "\(bytes) bytes do not fit a QR code here (at most \(maximum))"
            }
        }
    }

    /// 1 to 10.
    public let version: Int
    /// 0 to 7.
    public private(set) var mask: Int
    /// Modules per side: 17 + 4 × version.
    public var size: Int { 17 + 4 * version }
    /// `modules[row][column]`, true for dark.
    public private(set) var modules: [[Bool]]
    /// Which modules are finder, timing, alignment, format or version patterns.
    private var reserved: [[Bool]]

    /// Encodes `text` as UTF-8 in the smallest version that holds it; `mask` forces a mask (for tests).
    public init(encoding text: String, mask forcedMask: Int? = nil) throws(Failure) {
        let bytes = Array(text.utf8)
        guard let version = Self.blocks.indices.first(where: { Self.capacity(version: $0 + 1) >= bytes.count }) else {
            throw .tooLong(bytes: bytes.count, maximum: Self.capacity(version: Self.blocks.count))
        }
        var code = QRCode(blank: version + 1)
        code.drawCodewords(Self.codewords(bytes, version: version + 1))
        let candidates = (forcedMask.map { [$0] } ?? Array(0..<8)).map { mask in
            var candidate = code
            candidate.applyMask(mask)
            return (candidate, candidate.penalty())
        }
        self = candidates.min { $0.1 < $1.1 }!.0  // the first of the lowest penalty
    }

    /// The function patterns of `version`, no data yet.
    private init(blank version: Int) {
        self.version = version
        let size = 17 + 4 * version
        modules = Array(repeating: Array(repeating: false, count: size), count: size)
        reserved = modules
        mask = 0
        drawFunctionPatterns()
    }

    public static func == (lhs: QRCode, rhs: QRCode) -> Bool {
        lhs.version == rhs.version && lhs.mask == rhs.mask && lhs.modules == rhs.modules
    }

    // MARK: - Structure per version (level M)

    /// (error correction codewords per block, data codewords per block for each block) for versions 1 to 10.
    static let blocks: [(ec: Int, data: [Int])] = [
        (10, [16]), (16, [28]), (26, [44]), (18, [32, 32]), (24, [43, 43]),
        (16, [27, 27, 27, 27]), (18, [31, 31, 31, 31]), (22, [38, 38, 39, 39]),
        (22, [36, 36, 36, 37, 37]), (26, [43, 43, 43, 43, 44]),
    ]

    /// Centres of the alignment patterns in each direction, versions 1 to 10.
    static let alignmentCentres: [[Int]] = [
        [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50],
    ]

    /// Bytes that fit in `version`: the data bits less the mode (4 bits) and the count (8 or 16 bits).
    static func capacity(version: Int) -> Int {
        let dataBits = blocks[version - 1].data.reduce(0, +) * 8
        return (dataBits - 4 - (version < 10 ? 8 : 16)) / 8
    }

    // MARK: - Codewords

    /// The data stream (mode, count, bytes, terminator, padding) split into blocks, each followed
    /// by its Reed–Solomon codewords, interleaved as the standard places them.
    static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        let structure = blocks[version - 1]
        var bits = BitWriter()
        bits.append(0b0100, count: 4)
        bits.append(bytes.count, count: version < 10 ? 8 : 16)
        for byte in bytes { bits.append(Int(byte), count: 8) }
        let capacity = structure.data.reduce(0, +)
        bits.append(0, count: min(4, capacity * 8 - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var data = bits.bytes
        for pad in 0..<(capacity - data.count) { data.append(pad % 2 == 0 ? 0xEC : 0x11) }

        var dataBlocks: [[UInt8]] = []
        var offset = 0
        for length in structure.data {
            dataBlocks.append(Array(data[offset..<offset + length]))
            offset += length
        }
        let ecBlocks = dataBlocks.map { ReedSolomon.remainder(of: $0, degree: structure.ec) }
        var result: [UInt8] = []
        for index in 0..<(structure.data.max() ?? 0) {
            for block in dataBlocks where index < block.count { result.append(block[index]) }
        }
        for index in 0..<structure.ec {
            for block in ecBlocks { result.append(block[index]) }
        }
        return result
    }

    // MARK: - Drawing

    private mutating func set(_ row: Int, _ column: Int, _ dark: Bool) {
        modules[row][column] = dark
        reserved[row][column] = true
    }

    private mutating func drawFunctionPatterns() {
        for index in 0..<size {
            set(6, index, index % 2 == 0)
            set(index, 6, index % 2 == 0)
        }
        for (row, column) in [(3, 3), (3, size - 4), (size - 4, 3)] { drawFinder(row, column) }
        let centres = Self.alignmentCentres[version - 1]
        let corners: Set<[Int]> = [[0, 0], [0, centres.count - 1], [centres.count - 1, 0]]  // the finders
        for (i, row) in centres.enumerated() {
            for (j, column) in centres.enumerated() where !corners.contains([i, j]) { drawAlignment(row, column) }
        }
        drawFormat(mask: 0)  // reserves the areas; the real bits come with the mask
        if version >= 7 { drawVersion() }
    }

    /// A 7×7 finder centred at (row, column) with its light separator.
    private mutating func drawFinder(_ row: Int, _ column: Int) {
        for dy in -4...4 {
            for dx in -4...4 {
                let (r, c) = (row + dy, column + dx)
                guard (0..<size).contains(r), (0..<size).contains(c) else { continue }
                let ring = max(abs(dx), abs(dy))
                set(r, c, ring != 2 && ring != 4)
            }
        }
    }

    private mutating func drawAlignment(_ row: Int, _ column: Int) {
        for dy in -2...2 {
            for dx in -2...2 { set(row + dy, column + dx, max(abs(dx), abs(dy)) != 1) }
        }
    }

    /// The 15 format bits (level M = 00, then the mask), BCH-protected and XORed, in both copies,
    /// and the dark module.
    private mutating func drawFormat(mask: Int) {
        let bits = Self.formatBits(mask: mask)
        func bit(_ index: Int) -> Bool { (bits >> index) & 1 == 1 }
        for index in 0..<6 { set(index, 8, bit(index)) }
        set(7, 8, bit(6))
        set(8, 8, bit(7))
        set(8, 7, bit(8))
        for index in 9..<15 { set(8, 14 - index, bit(index)) }
        for index in 0..<8 { set(8, size - 1 - index, bit(index)) }
        for index in 8..<15 { set(size - 15 + index, 8, bit(index)) }
        set(size - 8, 8, true)
    }

    static func formatBits(mask: Int) -> Int {
        let data = 0b00 << 3 | mask
        var remainder = data
        for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
        return (data << 10 | remainder) ^ 0x5412
    }

    /// The 18 version bits (versions 7 and up), in both corners.
    private mutating func drawVersion() {
        var remainder = version
        for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
        let bits = version << 12 | remainder
        for index in 0..<18 {
            let dark = (bits >> index) & 1 == 1
            let (a, b) = (size - 11 + index % 3, index / 3)
            set(b, a, dark)
            set(a, b, dark)
        }
    }

    /// Places the codewords in the two-column zigzag from the bottom right, skipping the timing column.
    private mutating func drawCodewords(_ codewords: [UInt8]) {
        var index = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vertical in 0..<size {
                for offset in 0..<2 {
                    let column = right - offset
                    let upward = (right + 1) & 2 == 0
                    let row = upward ? size - 1 - vertical : vertical
                    guard !reserved[row][column], index < codewords.count * 8 else { continue }
                    modules[row][column] = (codewords[index >> 3] >> (7 - UInt8(index & 7))) & 1 == 1
                    index += 1
                }
            }
            right -= 2
        }
    }

    static func masked(_ mask: Int, row: Int, column: Int) -> Bool {
        let (x, y) = (column, row)
        return switch mask {
        case 0: (x + y) % 2 == 0
        case 1: y % 2 == 0
        case 2: x % 3 == 0
        case 3: (x + y) % 3 == 0
        case 4: (x / 3 + y / 2) % 2 == 0
        case 5: x * y % 2 + x * y % 3 == 0
        case 6: (x * y % 2 + x * y % 3) % 2 == 0
        default: ((x + y) % 2 + x * y % 3) % 2 == 0
        }
    }

    private mutating func applyMask(_ mask: Int) {
        for row in 0..<size {
            for column in 0..<size where !reserved[row][column] && Self.masked(mask, row: row, column: column) {
                modules[row][column].toggle()
            }
        }
        drawFormat(mask: mask)
        self.mask = mask
    }

    // MARK: - Penalty (the standard's four rules)

    func penalty() -> Int {
        var total = 0
        let columns = (0..<size).map { column in modules.map { $0[column] } }
        for line in modules + columns {
            var run = 1
            for index in 1...line.count {
                if index < line.count && line[index] == line[index - 1] {
                    run += 1
                } else {
                    if run >= 5 { total += run - 2 }
                    run = 1
                }
            }
            total += 40 * Self.finderLikeCount(line)
        }
        for row in 0..<size - 1 {
            for column in 0..<size - 1 {
                let dark = modules[row][column]
                if modules[row][column + 1] == dark && modules[row + 1][column] == dark
                    && modules[row + 1][column + 1] == dark
                {
                    total += 3
                }
            }
        }
        let darkCount = modules.reduce(0) { $0 + $1.filter { $0 }.count }
        let percent = darkCount * 100 / (size * size)
        total += 10 * (abs(percent - 50) / 5)
        return total
    }

    /// Occurrences of dark-light-dark×3-light-dark with four light modules on either side.
    static func finderLikeCount(_ line: [Bool]) -> Int {
        let core: [Bool] = [true, false, true, true, true, false, true]
        let light = [Bool](repeating: false, count: 4)
        var count = 0
        for pattern in [light + core, core + light] where line.count >= pattern.count {
            for start in 0...(line.count - pattern.count) where Array(line[start..<start + pattern.count]) == pattern {
                count += 1
            }
        }
        return count
    }

    // MARK: - Output

    /// The code for a terminal, two rows per line in half blocks, with a quiet zone of `quietZone`
    /// modules. Light modules are drawn (as on a dark terminal: `inverted` false) so that the code
    /// scans on the usual light-on-dark terminal; `inverted` draws the dark ones instead.
    public func render(quietZone: Int = 2, inverted: Bool = false) -> String {
        let extent = size + 2 * quietZone
        func drawn(_ row: Int, _ column: Int) -> Bool {
            let (r, c) = (row - quietZone, column - quietZone)
            let dark = (0..<size).contains(r) && (0..<size).contains(c) && modules[r][c]
            return dark == inverted
        }
        var lines: [String] = []
        for row in stride(from: 0, to: extent, by: 2) {
            var line = ""
            for column in 0..<extent {
                let top = drawn(row, column)
                let bottom = row + 1 < extent ? drawn(row + 1, column) : false
                line += top ? (bottom ? "█" : "▀") : (bottom ? "▄" : " ")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// Bits appended most significant first.
struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private(set) var count = 0

    mutating func append(_ value: Int, count length: Int) {
        for shift in stride(from: length - 1, through: 0, by: -1) {
            if count % 8 == 0 { bytes.append(0) }
            if (value >> shift) & 1 == 1 { bytes[bytes.count - 1] |= 0x80 >> UInt8(count % 8) }
            count += 1
        }
    }
}

/// Reed–Solomon over GF(256) with the QR polynomial x⁸ + x⁴ + x³ + x² + 1.
enum ReedSolomon {
    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var result = 0
        var x = Int(a)
        var y = Int(b)
        while y != 0 {
            if y & 1 != 0 { result ^= x }
            x <<= 1
            if x & 0x100 != 0 { x ^= 0x11D }
            y >>= 1
        }
        return UInt8(result)
    }

    /// The generator (x − α⁰)(x − α¹)…(x − α^(degree−1)), coefficients highest first without the leading 1.
    static func generator(degree: Int) -> [UInt8] {
        var coefficients = [UInt8](repeating: 0, count: degree)
        coefficients[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for index in 0..<degree {
                coefficients[index] = multiply(coefficients[index], root)
                if index + 1 < degree { coefficients[index] ^= coefficients[index + 1] }
            }
            root = multiply(root, 2)
        }
        return coefficients
    }

    /// The error correction codewords for `data`: the remainder of data·x^degree divided by the generator.
    static func remainder(of data: [UInt8], degree: Int) -> [UInt8] {
        let generator = generator(degree: degree)
        var result = [UInt8](repeating: 0, count: degree)
        for byte in data {
            let factor = byte ^ result.removeFirst()
            result.append(0)
            for index in 0..<degree { result[index] ^= multiply(generator[index], factor) }
        }
        return result
    }
}
