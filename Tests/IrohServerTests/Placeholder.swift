@testable import IrohServer
