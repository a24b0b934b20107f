# Shell helpers shared by scripts/ and benches/: a private nginx-rtmp and test clips.
# Source it; every function cleans up after itself through the caller's trap.

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_listen PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT.
wait_listen() {
  local port=$1 deadline=$((SECONDS + ${2:-10}))
  until ss -Hltn "sport = :$port" | grep -q "127.0.0.1:$port"; do
    if ((SECONDS >= deadline)); then
      echo "nothing listens on 127.0.0.1:$port" >&2
      return 1
    fi
    sleep 0.05
  done
}

# cleanup_on_exit DIR: at exit, stops the nginx of start_nginx_rtmp (if any) and removes DIR.
cleanup_on_exit() {
  CLEANUP_DIR=$1
  NGINX_PID=
  trap '[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null; rm -rf "$CLEANUP_DIR"' EXIT
}

# start_nginx_rtmp DIR PORT: runs nginx-rtmp in the foreground on 127.0.0.1:PORT with
# application "live" recording every stream to DIR/KEY.flv; sets NGINX_PID.
start_nginx_rtmp() {
  local dir=$1 port=$2
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log $dir/logs/error.log info;
pid $dir/nginx.pid;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:$port;
    chunk_size 4096;
    application live {
      live on;
      record all;
      record_path $dir;
      record_unique off;
    }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/logs/stdout.log" 2>&1 &
  NGINX_PID=$!
  wait_listen "$port" 10
}

# make_clip FILE SECONDS BITRATE: an FLV with H.264 Main (B-frames) 1280x720 30 fps and AAC.
make_clip() {
  local file=$1 seconds=$2 bitrate=$3
  ffmpeg -nostdin -v error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" \
    -t "$seconds" -c:v libx264 -preset veryfast -profile:v main -bf 2 -g 60 \
    -b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" \
    -c:a aac -b:a 128k -f flv "$file"
}

# packets FILE: one line per packet (type, pts, dts, key flag, size, MD5 of the payload).
packets() {
  ffprobe -v error -show_packets -show_data_hash MD5 -of json "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin).get("packets", []):
    print(p["codec_type"], p.get("pts"), p.get("dts"), p["flags"][0], p["size"], p.get("data_hash"))'
}
