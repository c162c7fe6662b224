#!/usr/bin/env bash
# The whole class layout in one tmux session, with one command:
#
#   window "platform"   broker · producer (--rate 20) · order-processor · storage
#   window "analytics"  two analytics members of one group: watch them split the partitions
#
#   examples/tmux-class.sh                      # create the session and attach to it
#   examples/tmux-class.sh --rate 50 --session class2 --brokers 127.0.0.1:9093
#   examples/tmux-class.sh --no-broker --brokers localhost:9092   # a Kafka already running
#   examples/tmux-class.sh --kill               # stop everything (roles commit first)
#
# Every pane is a shell with the command typed into it, so a learner can stop a role (q or
# Ctrl-C), press Up and Enter, and watch it rejoin. order-processor and storage print text
# lines; the analytics panes show the live view. Storage writes order-events.audit.jsonl in
# the current directory.
#
# The orderflow it runs: $ORDERFLOW_BIN if set, else `orderflow` on PATH (cargo install
# --path .), else scripts/orderflow of this checkout, which builds the release binary first.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: examples/tmux-class.sh [--session NAME] [--rate EVENTS/S] [--brokers HOST:PORT]
                              [--no-broker] [--detach]
       examples/tmux-class.sh [--session NAME] --kill

  --session NAME       the tmux session [default: orderflow-class]
  --rate EVENTS/S      the producer's rate [default: 20]
  --brokers HOST:PORT  where the development broker listens and every role connects
                       [default: 127.0.0.1:9092]
  --no-broker          no development broker: use the cluster at --brokers (Docker Kafka)
  --detach             create the session but do not attach to it
  --kill               stop the session: Ctrl-C to every role (they commit and leave their
                       groups), then close it
EOF
}

say() { echo "tmux-class: $*" >&2; }
die() {
  say "$*"
  exit 1
}

session="orderflow-class"
rate=20
brokers=127.0.0.1:9092
broker=yes
attach=yes
kill=no
while (($#)); do
  case "$1" in
    --session) session=${2:?--session needs a name}; shift 2 ;;
    --rate) rate=${2:?--rate needs a number}; shift 2 ;;
    --brokers) brokers=${2:?--brokers needs HOST:PORT}; shift 2 ;;
    --no-broker) broker=no; shift ;;
    --detach) attach=no; shift ;;
    --kill) kill=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $rate =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--rate wants a number of events per second, not '$rate'"
[[ $brokers =~ ^[^:]+:[0-9]+$ ]] || die "--brokers wants HOST:PORT, not '$brokers'"
# tmux turns '.' and ':' in session names into '_', and then -t NAME would not find it.
[[ $session =~ ^[A-Za-z0-9_-]+$ ]] || die "--session wants letters, digits, '-' and '_' only"

command -v tmux >/dev/null 2>&1 ||
  die "needs tmux (Debian/Ubuntu: sudo apt-get install tmux; macOS: brew install tmux; or scripts/setup)"

if [ "$kill" = yes ]; then
  tmux has-session -t "=$session" 2>/dev/null || die "no tmux session '$session' to stop"
  # Ctrl-C is a clean stop for every role: finish the record in hand, commit, leave the
  # group. The broker goes last, or the roles could not commit.
  panes=$(tmux list-panes -s -t "=$session" -F '#{pane_id} #{pane_title}')
  while read -r pane title; do
    [ "$title" = broker ] || tmux send-keys -t "$pane" C-c
  done <<<"$panes"
  # Wait (up to 15 s) until no pane but the broker's still runs orderflow.
  for _ in $(seq 30); do
    busy=$(tmux list-panes -s -t "=$session" -F '#{pane_title} #{pane_current_command}' |
      grep -v '^broker ' | grep -c ' orderflow$' || true)
    ((busy == 0)) && break
    sleep 0.5
  done
  tmux kill-session -t "=$session"
  say "stopped session '$session'"
  exit 0
fi

tmux has-session -t "=$session" 2>/dev/null &&
  die "a tmux session '$session' exists already: attach with 'tmux attach -t $session', stop it with '$0 --kill --session $session', or pick another --session"

# --- which orderflow --------------------------------------------------------------------------

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${ORDERFLOW_BIN:-}" ]; then
  [ -x "$ORDERFLOW_BIN" ] || die "ORDERFLOW_BIN=$ORDERFLOW_BIN is not an executable"
  orderflow=$(printf '%q' "$ORDERFLOW_BIN")
elif found=$(command -v orderflow 2>/dev/null); then
  # The panes run login shells, which set PATH afresh: type plain `orderflow` only if it
  # finds the same binary there, else its full path.
  if [ "$(bash -lc 'command -v orderflow' 2>/dev/null)" = "$found" ]; then
    orderflow=orderflow
  else
    orderflow=$(printf '%q' "$found")
  fi
else
  # Build now, in this terminal, rather than in six panes at once.
  say "building orderflow (scripts/orderflow; the first build takes a few minutes)"
  "$root/scripts/orderflow" --version >/dev/null
  orderflow=$(printf '%q' "$root/scripts/orderflow")
fi

if [ "$broker" = yes ] && (exec 3<>"/dev/tcp/${brokers%:*}/${brokers##*:}") 2>/dev/null; then
  die "something already listens on $brokers: use another --brokers HOST:PORT, or --no-broker to use it"
fi

# --- the session --------------------------------------------------------------------------------

# run_in PANE TITLE COMMAND: names the pane and types COMMAND into its shell.
run_in() {
  local pane=$1 title=$2 command=$3
  tmux select-pane -t "$pane" -T "$title"
  tmux send-keys -t "$pane" "$command" Enter
}
# split TARGET FLAGS...: a new pane (a shell) beside TARGET; prints its id.
split() {
  local target=$1
  shift
  tmux split-window -d -P -F '#{pane_id}' -t "$target" -c "$PWD" "$@"
}
titled() {
  # Pane titles on the borders, so everyone can say "look at the storage pane".
  tmux set-option -w -t "$1" pane-border-status top
  tmux set-option -w -t "$1" pane-border-format ' #{pane_title} '
}

b="-b $brokers"
# A size for the detached session; attaching resizes it to the terminal.
first=$(tmux new-session -d -s "$session" -n platform -x 200 -y 50 -c "$PWD" -P -F '#{pane_id}')
titled "$session:platform"

if [ "$broker" = yes ]; then
  run_in "$first" broker "$orderflow broker --listen $brokers"
  # The roles fail at once if no broker answers: wait until it listens.
  for _ in $(seq 120); do
    tmux capture-pane -p -t "$first" | grep -q 'listening on' && break
    sleep 0.5
  done
  if ! tmux capture-pane -p -t "$first" | grep -q 'listening on'; then
    say "the broker did not start within 60 s; its pane shows:"
    tmux capture-pane -p -t "$first" | sed '/^$/d' | tail -n 15 >&2
    tmux kill-session -t "=$session"
    exit 1
  fi
  producer=$(split "$first" -v -l 40%)
else
  producer=$first
fi
run_in "$producer" producer "$orderflow $b produce --rate $rate"
processor=$(split "$first" -h -l 55%)
run_in "$processor" order-processor "$orderflow $b order-processor --no-tui"
storage=$(split "$processor" -v -l 50%)
run_in "$storage" storage "$orderflow $b storage --no-tui"

# Two members of group `analytics`: three partitions, so one gets two and the other one.
tmux new-window -d -t "$session:" -n analytics -c "$PWD"
titled "$session:analytics"
analytics1=$(tmux list-panes -t "$session:analytics" -F '#{pane_id}')
run_in "$analytics1" analytics "$orderflow $b analytics"
analytics2=$(split "$analytics1" -v -l 50%)
run_in "$analytics2" analytics-2 "$orderflow $b analytics"

cat >&2 <<EOF
tmux-class: session '$session' is up, on $brokers:
  window platform   broker, producer (--rate $rate), order-processor, storage
                    (audit log: $PWD/order-events.audit.jsonl)
  window analytics  two members of group analytics sharing the partitions
  switch windows: Ctrl-b n · panes: Ctrl-b arrow · detach: Ctrl-b d
  stop it all:      $0 --kill --session $session
EOF

if [ "$attach" = yes ] && [ -t 0 ] && [ -t 1 ]; then
  if [ -n "${TMUX:-}" ]; then
    exec tmux switch-client -t "=$session"
  fi
  exec tmux attach-session -t "=$session"
fi
