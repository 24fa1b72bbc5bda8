import IrohServer
