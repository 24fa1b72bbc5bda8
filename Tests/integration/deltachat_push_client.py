"""Runs inside the venv with Delta Chat core's CFFI bindings (libdeltachat 2.23): configures one
account against our IMAP (plain) and an SMTP stub, gives core a push device token the way the
mobile apps do (dc_accounts_set_push_device_token), starts I/O and prints core's events until
killed. Core then encrypts the token and stores it with SETMETADATA when the server offers
XDELTAPUSH.

    python deltachat_push_client.py DIR ADDRESS PASSWORD IMAP_PORT SMTP_PORT TOKEN
"""

import sys

from deltachat.capi import ffi, lib


def main():
    directory, address, password, imap_port, smtp_port, token = sys.argv[1:]
    accounts = lib.dc_accounts_new(directory.encode(), 1)
    context = lib.dc_accounts_get_account(accounts, lib.dc_accounts_add_account(accounts))
    for key, value in [("addr", address), ("mail_pw", password), ("mail_server", "127.0.0.1"),
                       ("mail_port", imap_port), ("mail_security", str(lib.DC_SOCKET_PLAIN)),
                       ("send_server", "127.0.0.1"), ("send_port", smtp_port),
                       ("send_security", str(lib.DC_SOCKET_PLAIN)), ("bot", "1")]:
        assert lib.dc_set_config(context, key.encode(), value.encode()), key
    lib.dc_accounts_set_push_device_token(accounts, token.encode())
    emitter = lib.dc_accounts_get_event_emitter(accounts)
    lib.dc_configure(context)
    started = False
    while True:
        event = lib.dc_get_next_event(emitter)
        if event == ffi.NULL:
            break
        kind, data1 = lib.dc_event_get_id(event), lib.dc_event_get_data1_int(event)
        text = lib.dc_event_get_data2_str(event)
        line = ffi.string(text).decode(errors="replace") if text != ffi.NULL else ""
        if text != ffi.NULL:
            lib.dc_str_unref(text)
        lib.dc_event_unref(event)
        print(kind, data1, line, flush=True)
        if kind == lib.DC_EVENT_CONFIGURE_PROGRESS and data1 == 0:
            print("CONFIGURE FAILED", flush=True)
            return 1
        if kind == lib.DC_EVENT_CONFIGURE_PROGRESS and data1 == 1000 and not started:
            started = True
            lib.dc_accounts_start_io(accounts)
            print("STARTED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
