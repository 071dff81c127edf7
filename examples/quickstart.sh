#!/bin/sh
# Starts a loopback-only storage unit with the built-in coordinator and
# prints, step by step, how to back this host (or another) up to it with
# turku-agent. Run with -h for the options.
set -eu

usage() {
	cat <<'TXT'
Usage: examples/quickstart.sh [-d DIR] [-s SSH_PORT] [-a API_PORT] [-b BIN] [-n] [-h]

Starts turku-storage serve on loopback with the built-in coordinator; all
its state (configuration, var, lock and volume directories) lives under DIR.
A second run with the same DIR reuses that state (registered machines,
snapshots) and says so; remove DIR, or pick another, for a fresh start.

  -d DIR       state directory        (env QUICKSTART_DIR;      default /tmp/turku-storage-quickstart)
  -s SSH_PORT  SSH port on 127.0.0.1  (env QUICKSTART_SSH_PORT; default 28022)
  -a API_PORT  coordinator port       (env QUICKSTART_API_PORT; default 28410)
  -b BIN       turku-storage binary   (env QUICKSTART_BIN;      default ./turku-storage, built from this checkout)
  -n           write the configuration and print the steps, but do not build or start anything
  -h           this help

Flags win over the environment. Ctrl-C stops the storage unit.
TXT
}

dir=${QUICKSTART_DIR:-/tmp/turku-storage-quickstart}
ssh_port=${QUICKSTART_SSH_PORT:-28022}
api_port=${QUICKSTART_API_PORT:-28410}
bin=${QUICKSTART_BIN:-}
setup_only=false
while getopts d:s:a:b:nh opt; do
	case $opt in
	d) dir=$OPTARG ;;
	s) ssh_port=$OPTARG ;;
	a) api_port=$OPTARG ;;
	b) bin=$OPTARG ;;
	n) setup_only=true ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
for p in "$ssh_port" "$api_port"; do
	case $p in
	'' | *[!0-9]*) echo "quickstart: port $p: want a number 1-65535" >&2; exit 2 ;;
	esac
	if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
		echo "quickstart: port $p: want a number 1-65535" >&2
		exit 2
	fi
done
case $dir in
/*) ;;
*) dir=$(pwd)/$dir ;;
esac
case $dir in
*[\\\"\ ]*) echo "quickstart: directory '$dir': no spaces, quotes or backslashes, please" >&2; exit 2 ;;
esac

checkout=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$bin" ]; then
	bin=$checkout/turku-storage
	if ! $setup_only; then
		echo "quickstart: building $bin"
		(cd "$checkout" && go build -o "$bin" ./cmd/turku-storage)
	fi
fi

if [ -n "$(ls -A "$dir/var" 2>/dev/null)" ]; then
	echo "quickstart: reusing the state under $dir from an earlier run (registered machines, snapshots, host key);"
	echo "            remove it (rm -rf $dir) or pass -d for a fresh start."
else
	echo "quickstart: fresh state under $dir"
fi
mkdir -p "$dir/etc/config.d" "$dir/var" "$dir/lock" "$dir/volume"
chmod 0700 "$dir/var"
# Written on every run, so the ports and directory given now apply.
cat >"$dir/etc/config.d/10-storage.json" <<JSON
{
    "name": "quickstart",
    "secret": "quickstart-storage-secret",
    "machine_registration_secret": "quickstart-registration-secret",
    "coordinator_listen": "127.0.0.1:$api_port",
    "ssh_listen": "127.0.0.1:$ssh_port",
    "ssh_ping_host": "127.0.0.1",
    "ssh_ping_port": $ssh_port,
    "ssh_ping_user": "turku-ping",
    "var_dir": "$dir/var",
    "lock_dir": "$dir/lock",
    "control_socket": "$dir/control.sock",
    "volumes": {
        "default": {"path": "$dir/volume"}
    }
}
JSON
ts="$bin -c $dir/etc"
if ! $setup_only; then
	$ts config check >/dev/null
fi

cat <<TXT

Storage unit: SSH on 127.0.0.1:$ssh_port, built-in coordinator on
http://127.0.0.1:$api_port/v1, configuration in $dir/etc/config.d.

To back up this host with turku-agent (as root; the agent runs an rsync
daemon and ssh, and both sides stay on loopback):

1. Get turku-agent (Python 3; source at https://github.com/rfinnie/turku-agent):

     apt-get install -y rsync openssh-client python3-venv git
     git clone https://github.com/rfinnie/turku-agent /usr/local/src/turku-agent
     python3 -m venv /opt/turku-agent
     /opt/turku-agent/bin/pip install /usr/local/src/turku-agent

   (pip also installs its Python dependencies, requests and PyYAML.)

2. Point it at this storage unit, /etc/turku-agent/config.d/10-api.json:

     {
         "api_url": "http://127.0.0.1:$api_port/v1",
         "api_auth_name": "Machine Registrations",
         "api_auth_secret": "quickstart-registration-secret",
         "unit_name": "$(hostname -s 2>/dev/null || echo web1)",
         "rsyncd_local_address": "127.0.0.2"
     }

   (rsyncd_local_address keeps the agent's rsync daemon apart from the
   storage unit's listeners on 127.0.0.1; needed only on one host.)

3. Give it something to back up, /etc/turku-agent/sources.d/etc.json:

     {
         "etc": {
             "path": "/etc",
             "frequency": "daily",
             "retention": "last 5 snapshots"
         }
     }

4. Register the machine and its sources:

     /opt/turku-agent/bin/turku-update-config
     $ts machines list
     $ts sources list

5. A new daily source is first due tomorrow; make it due now, then back up:

     $ts sources run-now UNIT etc
     /opt/turku-agent/bin/turku-agent-ping

   (UNIT is the unit_name of step 2. turku-agent-ping ignores ssh's exit
   status: judge a run by the storage unit's log below, or by step 6.)

6. See the result:

     $ts logs
     $ts snapshots UNIT etc

TXT
if $setup_only; then
	exit 0
fi
echo "Starting the storage unit (Ctrl-C stops it):"
exec $ts serve
