# Sourced by the scripts that start a server and must wait for it.

# Waits until something accepts connections on 127.0.0.1:$1 (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2
  return 1
}
