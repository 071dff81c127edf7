#!/bin/sh
# Starts a loopback-only storage unit with the built-in coordinator and
# prints, step by step, how to back this host up to it with a second
# turku-agent of its own (its own configuration, state and lock
# directories, beside any agent the host already has). Run with -h for
# the options.
set -eu

usage() {
	cat <<'TXT'
Usage: examples/quickstart.sh [-d DIR] [-s SSH_PORT] [-a API_PORT] [-b BIN] [-n | -w] [-h]

Starts turku-storage serve on loopback with the built-in coordinator; all
its state (configuration, var, lock and volume directories) lives under DIR,
and the agent's steps use DIR/agent. A second run with the same DIR reuses
that state (registered machines, snapshots) and says so; while a serve runs
there it stops before building. Remove DIR, or pick another, for a fresh start.

  -d DIR       state directory        (env QUICKSTART_DIR;      default /tmp/turku-storage-quickstart)
  -s SSH_PORT  SSH port on 127.0.0.1  (env QUICKSTART_SSH_PORT; default 28022)
  -a API_PORT  coordinator port       (env QUICKSTART_API_PORT; default 28410)
  -b BIN       turku-storage binary   (env QUICKSTART_BIN;      default ./turku-storage, built from this checkout)
  -n           dry run: print the configuration and the steps; create, build and start nothing
  -w           write the configuration and print the steps, but do not build or start anything
  -h           this help

Flags win over the environment. Ctrl-C stops the storage unit.
TXT
}

dir=${QUICKSTART_DIR:-/tmp/turku-storage-quickstart}
ssh_port=${QUICKSTART_SSH_PORT:-28022}
api_port=${QUICKSTART_API_PORT:-28410}
bin=${QUICKSTART_BIN:-}
mode=run
while getopts d:s:a:b:nwh opt; do
	case $opt in
	d) dir=$OPTARG ;;
	s) ssh_port=$OPTARG ;;
	a) api_port=$OPTARG ;;
	b) bin=$OPTARG ;;
	n) mode=dry-run ;;
	w) mode=write ;;
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

# serve holds VAR_DIR/serve.lock while it runs: a second one on the same
# state would be refused at start, after a build for nothing.
lock=$dir/var/serve.lock
if [ -f "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then
	pid=$(tr -dc 0-9 <"$lock" 2>/dev/null || true)
	echo "quickstart: a turku-storage serve already runs on $dir${pid:+ (pid $pid)};" >&2
	echo "            stop it (Ctrl-C where it runs${pid:+, or kill $pid}) or pass -d for another directory." >&2
	exit 1
fi

checkout=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$bin" ]; then
	bin=$checkout/turku-storage
	if [ "$mode" = run ]; then
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
config=$(
	cat <<JSON
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
)
ts="$bin -c $dir/etc"
if [ "$mode" = dry-run ]; then
	echo "quickstart: dry run: nothing is created; $dir/etc/config.d/10-storage.json would be:"
	echo "$config"
else
	mkdir -p "$dir/etc/config.d" "$dir/var" "$dir/lock" "$dir/volume"
	chmod 0700 "$dir/var"
	# Written on every run, so the ports and directory given now apply.
	echo "$config" >"$dir/etc/config.d/10-storage.json"
	if [ "$mode" = run ]; then
		$ts config check >/dev/null
	fi
fi

# The agent: a second one on this host, apart from any it has already
# (its configuration, state and locks under $agent, its rsync daemon on
# 127.0.0.2).
agent=$dir/agent
unit=$(hostname -s 2>/dev/null || echo web1)
ta=/opt/turku-agent/bin

cat <<TXT

Storage unit: SSH on 127.0.0.1:$ssh_port, built-in coordinator on
http://127.0.0.1:$api_port/v1, configuration in $dir/etc/config.d.

To back up this host with turku-agent (as root; the agent runs an rsync
daemon and ssh, and both sides stay on loopback). This agent keeps its
configuration in $agent/etc (every agent command gets -c $agent/etc),
so it runs beside an agent the host may already have in /etc/turku-agent:

1. Get turku-agent (Python 3; source at https://github.com/rfinnie/turku-agent):

     apt-get install -y rsync openssh-client python3-venv git
     git clone https://github.com/rfinnie/turku-agent /usr/local/src/turku-agent
     python3 -m venv /opt/turku-agent
     $ta/pip install /usr/local/src/turku-agent

   (pip also installs its Python dependencies, requests and PyYAML. To take
   Debian's instead: apt-get install -y python3-requests python3-yaml, then
   python3 -m venv --system-site-packages /opt/turku-agent and
   $ta/pip install --no-deps /usr/local/src/turku-agent.)

2. Point it at this storage unit, $agent/etc/config.d/10-api.json:

     {
         "api_url": "http://127.0.0.1:$api_port/v1",
         "api_auth_name": "Machine Registrations",
         "api_auth_secret": "quickstart-registration-secret",
         "unit_name": "$unit",
         "var_dir": "$agent/var",
         "lock_dir": "$agent/lock",
         "rsyncd_local_address": "127.0.0.2"
     }

   and make its directories:

     mkdir -p $agent/etc/config.d $agent/etc/sources.d $agent/lock
     install -d -m 0700 $agent/var

   (var_dir and lock_dir keep its machine identity, keys and locks apart
   from another agent's /var/lib/turku-agent and /run/lock;
   rsyncd_local_address keeps its rsync daemon apart from the storage
   unit's listeners and another agent's daemon on 127.0.0.1.)

3. Give it something to back up, $agent/etc/sources.d/etc.json:

     {
         "etc": {
             "path": "/etc",
             "frequency": "daily",
             "retention": "last 5 snapshots"
         }
     }

4. Register the machine and its sources, start its rsync daemon, and check:

     $ta/turku-update-config -c $agent/etc
     $ta/turku-agent-rsyncd-wrapper -c $agent/etc --detach
     $ts machines list
     $ts sources list

5. A new daily source is first due tomorrow; make it due now, then back up:

     $ts sources run-now $unit etc
     $ta/turku-agent-ping -c $agent/etc

   (turku-agent-ping ignores ssh's exit status: judge a run by the storage
   unit's log below, or by step 6.)

6. See the result:

     $ts logs
     $ts snapshots $unit etc

7. Backups then go on by themselves when turku-agent-ping runs every 5
   minutes: the agent's packaged systemd timer (turku-agent-ping.timer)
   and cron file do that for /etc/turku-agent only, so for this agent add
   /etc/cron.d/turku-agent-quickstart:

     */5 * * * * root $ta/turku-agent-ping -c $agent/etc --wait=240 >/dev/null 2>&1

   Each run asks the coordinator what is due: etc again tomorrow.

TXT
if [ "$mode" != run ]; then
	exit 0
fi
echo "Starting the storage unit (Ctrl-C stops it):"
exec $ts serve
