import Testing
import TURNCore
@Test func placeholder() {}
