# Sourced by the scripts that start a tickwire-server: waits for its `listening` line and reads
# its fields.
#
#   wait_listening FILE      waits (up to 10 s) for the line in the server's stdout FILE
#   field NAME               a field of that line: http, quic, cert-sha256

wait_listening() {
  for _ in $(seq 100); do grep -q '^listening ' "$1" && break; sleep 0.1; done
  listening_line=$(grep -m1 '^listening ' "$1" || true)
  [ -n "$listening_line" ] || { echo "the server printed no listening line" >&2; return 1; }
}

field() { tr ' ' '\n' <<<"$listening_line" | sed -n "s/^$1=//p"; }
