import ArgumentParser
import ChatmailConfig
import ChatmailControl
import ChatmailCrypto
import ChatmailQR
import ChatmailState
import Foundation
import IMAPStore
import ShadowsocksCore
import ShadowsocksServer

// Not @main: the module has several files, and main.swift's top-level code (at the end) starts it.
struct Chatmailctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatmailctl",
        abstract: "Operate a running chatmail supervisor.",
        subcommands: [
            Status.self, Start.self, Stop.self, Restart.self, Enable.self, Disable.self, Reload.self, Turn.self,
            Shadowsocks.self,
            CheckConfig.self, User.self, Doctor.self, Ports.self, Invite.self,
        ])
}

/// `arguments` with the `--config`/`--socket` options that precede the subcommand moved behind it, where each
/// subcommand declares them (ArgumentParser takes a subcommand's options only after its name).
func movingLeadingOptions(_ arguments: [String]) -> [String] {
    let names = ["--config", "--socket"]
    var leading: [String] = []
    var rest = arguments[...]
    while let first = rest.first {
        if names.contains(where: { first.hasPrefix($0 + "=") }) {
            leading.append(first)
            rest = rest.dropFirst()
        } else if names.contains(first), rest.count >= 2 {
            leading += rest.prefix(2)
            rest = rest.dropFirst(2)
        } else {
            break
        }
    }
    var result = Array(rest)
    result.insert(contentsOf: leading, at: result.firstIndex(of: "--") ?? result.endIndex)
    return result
}

/// How to reach the supervisor: its control socket, named directly or through the configuration.
struct Connection: ParsableArguments {
    @Option(name: .long, help: "The supervisor's configuration file, which names the control socket.")
    var config = "/etc/chatmail/supervisor.conf"

    @Option(name: .long, help: "The control socket (overrides --config).")
    var socket: String?

    /// Sends one command and returns the answer; prints the failure and exits non-zero otherwise.
    func send(_ command: ControlCommand, timeout: Duration = .seconds(10)) async throws -> ControlResponse {
        let path: String
        if let socket {
            path = socket
        } else {
            do {
                path = try Configuration.controlSocket(path: config)
            } catch {
                fail("cannot find the control socket: \(error)\n(use --config FILE or --socket PATH)")
            }
        }
        let client: ControlClient
        do {
            client = try await ControlClient.connect(path: path)
        } catch {
            fail("the supervisor is not running (cannot connect to \(path): \(error))", code: 69)
        }
        defer { Task { await client.close() } }
        let response: ControlResponse
        do {
            response = try await client.request(
                command, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
        } catch {
            fail("\(error)")
        }
        guard response.ok else { fail(response.error ?? "refused") }
        return response
    }

    func run(_ command: ControlCommand, timeout: Duration = .seconds(10)) async throws {
        let response = try await send(command, timeout: timeout)
        if let message = response.message { print(message) }
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("chatmailctl: \(message)\n".utf8))
    exit(code)
}

/// The configuration at `path`; prints every error in it and exits 1 otherwise.
func loadConfiguration(_ path: String) -> Configuration {
    do {
        return try Configuration.load(path: path)
    } catch {
        fail("\n\(error)")
    }
}

/// How long `--wait` may take: a stop timeout plus a readiness timeout, with room to spare.
let waitTimeout: Duration = .seconds(180)

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every child: state, pid, uptime, restarts, last exit.")
    @OptionGroup var connection: Connection
    @Flag(name: .long, help: "Print JSON: {\"sidecars\": [{\"name\": ..., \"state\": ..., ...}]}.") var json = false

    func run() async throws {
        guard let status = try await connection.send(.status).status else { fail("no status in the answer") }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
            return
        }
        let rows =
            [["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "LISTEN", "PORTS"]]
            + status.sidecars.map { s in
                [
                    s.name, s.state + (s.crashLooping ? " (crash loop)" : ""), s.pid.map(String.init) ?? "-",
                    s.uptime.map(formatUptime) ?? "-", String(s.restarts), s.lastExit ?? "-",
                    s.listen.joined(separator: " "), s.ports.joined(separator: " "),
                ]
            }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            print(
                zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        for s in status.sidecars { if let message = s.message { print("\(s.name): \(message)") } }
        if connection.socket == nil, let configuration = try? Configuration.load(path: connection.config) {
            print("account creation: \(AccountCreationGate(for: configuration).state())")
        }
    }

    private func formatUptime(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86400)d\(s % 86400 / 3600)h"
    }
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start a stopped child.")
    @OptionGroup var connection: Connection
    @Argument(help: "turn, iroh, shadowsocks or imap") var name: String
    @Flag(help: "Return once it is ready.") var wait = false
    func run() async throws { try await connection.run(.start(name: name, wait: wait), timeout: waitTimeout) }
}

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop a child until it is started again.")
    @OptionGroup var connection: Connection
    @Argument(help: "turn, iroh, shadowsocks or imap") var name: String
    @Flag(help: "Return once it has exited.") var wait = false
    func run() async throws { try await connection.run(.stop(name: name, wait: wait), timeout: waitTimeout) }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restart a child.")
    @OptionGroup var connection: Connection
    @Argument(help: "turn, iroh, shadowsocks or imap") var name: String
    @Flag(help: "Return once the new process is ready.") var wait = false
    func run() async throws { try await connection.run(.restart(name: name, wait: wait), timeout: waitTimeout) }
}

struct Enable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enable a sidecar (saved) and start it.")
    @OptionGroup var connection: Connection
    @Argument(help: "turn, iroh or shadowsocks") var name: String
    func run() async throws { try await connection.run(.enable(name: name)) }
}

struct Disable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Disable a sidecar (saved) and stop it.")
    @OptionGroup var connection: Connection
    @Argument(help: "turn, iroh or shadowsocks") var name: String
    func run() async throws { try await connection.run(.disable(name: name)) }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read the configuration; restart only the children whose settings changed.")
    @OptionGroup var connection: Connection
    func run() async throws { try await connection.run(.reload) }
}

struct Turn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "TURN operations.", subcommands: [RotateSecret.self])

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret",
            abstract: "Make a new TURN secret; the previous one stays accepted until its credentials expire.")
        @OptionGroup var connection: Connection
        func run() async throws { try await connection.run(.rotateTURNSecret) }
    }
}

/// Mail accounts, straight in chatmail-imap's store (SQLite in WAL mode: safe while it runs).
struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mail accounts: add, delete, list, change passwords; whether first logins create accounts.",
        subcommands: [Add.self, Del.self, List.self, Passwd.self, Creation.self])

    struct Store: ParsableArguments {
        @Option(name: .long, help: "The configuration file, which says where the mail store is.")
        var config = "/etc/chatmail/supervisor.conf"

        func open() -> MailDatabase {
            do {
                let configuration = try Configuration.load(path: config)
                try FileManager.default.createDirectory(
                    atPath: configuration.supervisor.stateDir, withIntermediateDirectories: true)
                return try MailDatabase(
                    path: MailDatabase.path(for: configuration), settings: MailDatabase.Settings(configuration.imap))
            } catch {
                fail("cannot open the mail store: \(error)")
            }
        }
    }

    /// The given password, or a new random one that is printed.
    static func password(_ given: String?) -> String {
        if let given { return given }
        let generated = String(Crypto.base64URL(Crypto.randomBytes(18)).prefix(24))
        print("password: \(generated)")
        return generated
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an account (a random password unless given).")
        @OptionGroup var store: Store
        @Argument(help: "The address, localpart@mail_domain.") var address: String
        @Option(name: .long, help: "The password (default: generated and printed).") var password: String?

        func run() async throws {
            do {
                guard try store.open().addAccount(address: address, password: User.password(password)) else {
                    fail("\(address) exists")
                }
                print("\(address.lowercased()) added")
            } catch {
                fail("\(error)")
            }
        }
    }

    struct Del: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an account and all its mail.")
        @OptionGroup var store: Store
        @Argument var address: String

        func run() async throws {
            guard (try? store.open().deleteAccount(address: address)) == true else { fail("no account \(address)") }
            print("\(address.lowercased()) deleted")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts with their usage and last login.")
        @OptionGroup var store: Store

        func run() async throws {
            let accounts: [MailDatabase.AccountSummary]
            do {
                accounts = try store.open().accounts()
            } catch {
                fail("\(error)")
            }
            let formatter = ISO8601DateFormatter()
            for account in accounts {
                let used = String(format: "%.1f", Double(account.usedBytes) / 1_048_576)
                let login = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(account.lastLogin)))
                print("\(account.address)\t\(used) MB\tlast login \(login)")
            }
        }
    }

    struct Creation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whether first logins (IMAP, SMTP) create accounts now, and what closes it.",
            discussion: "Closed while <state_dir>/nocreate exists or the disk under the mail store has less than "
                + "[imap] min_free_space free. `user add` works either way.")
        @Option(name: .long, help: "The configuration file.") var config = "/etc/chatmail/supervisor.conf"

        func run() async throws {
            do {
                print("account creation: \(AccountCreationGate(for: try Configuration.load(path: config)).state())")
            } catch {
                fail("\(error)")
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an account's password.")
        @OptionGroup var store: Store
        @Argument var address: String
        @Option(name: .long, help: "The new password (default: generated and printed).") var password: String?

        func run() async throws {
            guard (try? store.open().setPassword(address: address, password: User.password(password))) == true else {
                fail("no account \(address)")
            }
            print("password of \(address.lowercased()) changed")
        }
    }
}

struct Shadowsocks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shadowsocks", abstract: "Shadowsocks operations.", subcommands: [URL.self])

    struct URL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "url",
            abstract: "Print the ss:// link for Delta Chat.",
            discussion: """
                Without [shadowsocks] key, the key is the one chatmail-supervisor keeps in its state database: \
                asked from the running supervisor (which makes it if needed), or read from the database while \
                the supervisor is down.
                """)
        @Option(name: .long, help: "The configuration file.") var config = "/etc/chatmail/supervisor.conf"
        @Option(name: .long, help: "The host in the link (default: [shadowsocks] public_host).") var host: String?
        @Flag(name: .long, help: "Also print the link as a QR code for the terminal.") var qr = false

        func run() async throws {
            let configuration = loadConfiguration(config)
            let section = configuration.shadowsocks
            let credential: ShadowsocksCredential
            do {
                credential = try ShadowsocksSettings.credential(
                    from: configuration, generatedKey: try await Self.generatedKey(configuration))
            } catch {
                fail("\(error)")
            }
            let host = host ?? section.publicHost
            guard !host.isEmpty else { fail("no host for the link: set [shadowsocks] public_host or use --host") }
            printLink(credential.link(host: host, port: section.publicPort, tag: host), qr: qr)
        }

        /// The supervisor's key for `[shadowsocks] method` when the file sets none: from the running supervisor
        /// (which makes it if needed), else read-only from its state database. chatmailctl never makes one, so
        /// it cannot print a key the supervisor would not use. Throws `KeyError` with what went wrong.
        static func generatedKey(_ configuration: Configuration, timeoutMilliseconds: Int64 = 10_000)
            async throws(KeyError) -> String?
        {
            let section = configuration.shadowsocks
            guard section.key == nil, let method = ShadowsocksMethod(rawValue: section.method) else { return nil }
            if let client = try? await ControlClient.connect(path: configuration.supervisor.controlSocket) {
                defer { Task { await client.close() } }
                let answer: ControlResponse
                do {
                    answer = try await client.request(
                        .shadowsocksKey(method: method.rawValue), timeout: .milliseconds(timeoutMilliseconds))
                } catch {
                    throw KeyError("no answer from the supervisor: \(error)")
                }
                guard answer.ok, let key = answer.key else {
                    throw KeyError(answer.error ?? "the supervisor gave no key")
                }
                return key
            }
            let reader = StateReader(directory: configuration.supervisor.stateDir)
            let key: String?
            do {
                key = try reader.setting(method.stateKey)
            } catch {
                throw KeyError("cannot read \(reader.path): \(error)")
            }
            guard let key else {
                throw KeyError(
                    "no Shadowsocks key yet: chatmail-supervisor makes it when it starts (\(reader.path)); "
                        + "start it, or set [shadowsocks] key")
            }
            return key
        }

        struct KeyError: Error, CustomStringConvertible {
            var description: String
            init(_ description: String) { self.description = description }
        }
    }
}

extension Chatmailctl {
    /// Options may come before the subcommand too (`chatmailctl --config F status`, as `supervisorctl -c F status`).
    static func start() async {
        await main(movingLeadingOptions(Array(CommandLine.arguments.dropFirst())))
    }
}

await Chatmailctl.start()
