import IrohCore
