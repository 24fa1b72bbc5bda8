#!/bin/bash
# A stand-in child for the supervisor's tests, speaking the control protocol in plain bash.
# Usage: fake-child.sh MODE [--config FILE]; MODE is one of
#   ready        say hello and ready, then log every control line until TERM or EOF
#   never-ready  say hello only
#   exit78       exit with 78 (configuration error)
#   exit-now     exit with 3 at once (a crash loop)
#   stubborn     ready, but ignore SIGTERM (the supervisor must SIGKILL it)
#   family       ready, with a grandchild in the same process group
#   slow         ready after one second
# SIGUSR1 makes it ask for discovery, as chatmail-imap does per session.
# Lines go to $FAKE_CHILD_LOG as "NAME PID TEXT".
mode=${1:-ready}
fd=${CHATMAIL_CONTROL_FD:?no control channel}
name=${CHATMAIL_CHILD_NAME:?}
log=${FAKE_CHILD_LOG:-/dev/null}
say() { echo "$1" >&"$fd"; }
note() { echo "$name $$ $1" >> "$log"; }

note "started $mode NOTIFY_SOCKET=${NOTIFY_SOCKET-} WATCHDOG_USEC=${WATCHDOG_USEC-}"
say "{\"id\":1,\"type\":\"hello\",\"name\":\"$name\",\"pid\":$$}"
case $mode in
  exit78) note "exit 78"; exit 78 ;;
  exit-now) exit 3 ;;
  never-ready) ;;
  stubborn) trap 'note "ignoring TERM"' TERM; say '{"id":2,"type":"ready"}' ;;
  family) sleep 1000 & note "grandchild $!"; say '{"id":2,"type":"ready"}' ;;
  slow) sleep 1; note "ready now"; say '{"id":2,"type":"ready"}' ;;
  *) say '{"id":2,"type":"ready"}' ;;
esac
[ "$mode" = stubborn ] || trap 'note "TERM"; exit 0' TERM
trap 'say "{\"id\":3,\"type\":\"discovery\"}"' USR1
while true; do
  if read -r -t 1 line <&"$fd"; then note "$line"
  elif [ $? -le 128 ]; then note "EOF"; exit 0; fi
done
