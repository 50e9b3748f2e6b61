"""Static checks of the production stack: docker-compose.yml, Dockerfile and .dockerignore.

No Docker engine is needed: the compose file is read with PyYAML, whose safe_load resolves the x-app anchor and the
merge keys the way compose does. Compose-side escaping is kept in mind: "$$" is a literal dollar for the container,
"${VAR}" / "$VAR" is filled by compose from the environment or .env.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"

REQUIRED = {"db", "redis", "web", "worker", "beat", "mlflow"}
APP_SERVICES = ("web", "worker", "beat")
APP_ENV = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
VOLUME_SERVICES = ("db", "redis", "mlflow")

# "$$" (escaped dollar), "${NAME...}" or "$NAME": the first alternative swallows escapes so they never match a name.
_INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
# A value made of a single compose reference, e.g. ${SECRET_KEY} or ${POSTGRES_PASSWORD:?message}.
_REFERENCE_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?\-+][^}]*)?\}$")
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
# scheme://user:password@host with a password that is not a ${...} reference.
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:(?!\$\{)[^\s@/]+@", re.IGNORECASE)


@functools.cache
def compose() -> dict:
    assert COMPOSE_FILE.exists(), f"{COMPOSE_FILE.name} is missing at the project root"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE.name} does not hold a YAML mapping"
    return data


def services() -> dict:
    found = compose().get("services")
    assert isinstance(found, dict) and found, f"{COMPOSE_FILE.name} has no 'services' mapping"
    return found


def service(name: str) -> dict:
    found = services().get(name)
    assert isinstance(found, dict), f"service {name!r} is missing from {COMPOSE_FILE.name}"
    return found


def as_text(command) -> str:
    """A command or healthcheck test, in list or string form, as one string."""
    if command is None:
        return ""
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return str(command)


def environment(svc: dict) -> dict:
    """A service's environment in either compose form (mapping or list of NAME=value) as a dict."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {name: value for name, value in pairs}
    return dict(env)


def env_files(svc: dict) -> list[str]:
    """The env_file paths of a service (string, list of strings, or list of {path: ...})."""
    value = svc.get("env_file") or []
    items = value if isinstance(value, list) else [value]
    return [item["path"] if isinstance(item, dict) else item for item in items]


def documented_variables() -> set[str]:
    assert ENV_EXAMPLE.exists(), ".env.example is missing; it must document every variable the stack reads"
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        # Documented either as NAME=value or commented out as "# NAME=value".
        match = re.match(r"^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match:
            names.add(match.group(1))
    return names


def strings(node):
    """Every string (mapping keys included) in the loaded compose data; comments are gone after parsing."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def is_named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~", "$"))


def volume_sources(svc: dict) -> list[str]:
    sources = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type", "volume") == "volume" and entry.get("source"):
                sources.append(entry["source"])
        elif ":" in entry:
            sources.append(entry.split(":", 1)[0])
    return sources


def test_it_defines_every_required_service():
    missing = sorted(REQUIRED - services().keys())
    assert not missing, f"{COMPOSE_FILE.name} lacks the service(s) {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_it_gives_every_service_a_health_check(name):
    check = service(name).get("healthcheck")
    assert isinstance(check, dict), f"service {name!r} has no healthcheck"
    assert not check.get("disable"), f"service {name!r} disables its healthcheck"
    test = check.get("test")
    assert test, f"service {name!r} has a healthcheck without a 'test'"
    assert as_text(test).strip().upper() != "NONE" and test != ["NONE"], f"service {name!r} healthcheck test is NONE"


def test_it_pins_every_image():
    for name, svc in services().items():
        image = svc.get("image")
        if image is None:
            assert "build" in svc, f"service {name!r} has neither an image nor a build section"
            continue
        assert not image.endswith(":latest"), f"service {name!r} uses a floating ':latest' image ({image})"
        if "build" in svc:
            continue  # the image name only tags what compose builds from the Dockerfile
        last_part = image.rsplit("/", 1)[-1]
        assert ":" in last_part or "@sha256:" in image, (
            f"service {name!r} image {image!r} has no tag; pin a version such as name:1.2.3"
        )


def test_it_builds_web_worker_and_beat_from_the_dockerfile_as_one_image():
    images = set()
    for name in APP_SERVICES:
        svc = service(name)
        assert "build" in svc, f"service {name!r} should be built from the project's Dockerfile"
        images.add(svc.get("image"))
    assert len(images) == 1, f"web, worker and beat should share one image name, found {sorted(map(str, images))}"
    assert "x-app" in compose(), "the shared app configuration should live in an 'x-app' extension field"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_it_passes_the_app_settings_to(name):
    svc = service(name)
    env = environment(svc)
    from_env_file = ".env" in [Path(path).name for path in env_files(svc)]
    documented = documented_variables()
    for variable in APP_ENV:
        if variable in env:
            value = env[variable]
            assert value is None or _REFERENCE_ONLY.match(str(value)), (
                f"service {name!r} sets {variable} to a literal; use ${{{variable}}} or env_file: .env"
            )
        else:
            assert from_env_file, f"service {name!r} gets no {variable}: add env_file: .env or environment"
            assert variable in documented, f"{variable} is read from .env by {name!r} but .env.example lacks it"


def test_it_points_the_app_at_mlflow():
    for name in APP_SERVICES:
        value = environment(service(name)).get("MLFLOW_TRACKING_URI")
        assert value == "http://mlflow:5000", (
            f"service {name!r} should have MLFLOW_TRACKING_URI=http://mlflow:5000, has {value!r}"
        )


def test_it_has_no_literal_secrets():
    for name, svc in services().items():
        for variable, value in environment(svc).items():
            if value is None or not _SECRET_NAME.search(variable):
                continue
            assert _REFERENCE_ONLY.match(str(value)), (
                f"service {name!r} assigns a literal to {variable}; reference it as ${{{variable}}} and keep it in .env"
            )
    for text in strings(compose()):
        match = _URL_WITH_PASSWORD.search(text)
        assert not match, f"{COMPOSE_FILE.name} contains a URL with a literal password: {match.group(0)!r}"


def test_it_keeps_secret_assignments_out_of_the_raw_file():
    # Catches what parsing could hide, e.g. a literal in a shell command or an anchor nobody merges.
    for number, line in enumerate(COMPOSE_FILE.read_text().splitlines(), start=1):
        code = line.split(" #", 1)[0].strip()
        if code.startswith("#"):
            continue
        for match in re.finditer(r"([A-Za-z0-9_]*(?:SECRET_KEY|PASSWORD))\s*[:=]\s*([^\s,}\]]+)", code):
            value = match.group(2).strip("'\"")
            assert value.startswith("$"), (
                f"{COMPOSE_FILE.name} line {number} assigns {match.group(1)} the literal {value!r}; use a ${{...}} "
                f"reference and keep the value in .env"
            )


def test_it_declares_the_named_volumes_at_top_level():
    declared = set((compose().get("volumes") or {}).keys())
    for name in VOLUME_SERVICES:
        named = [source for source in volume_sources(service(name)) if is_named_volume(source)]
        assert named, f"service {name!r} keeps its data in no named volume"
        undeclared = sorted(set(named) - declared)
        assert not undeclared, f"volume(s) {', '.join(undeclared)} of service {name!r} are not declared under 'volumes:'"


def test_it_migrates_and_collects_static_before_gunicorn():
    web = service("web")
    command = as_text(web.get("entrypoint")) + " " + as_text(web.get("command"))
    assert "gunicorn" in command, "web does not start gunicorn"
    assert "sensorhub.wsgi" in command, "web's gunicorn should serve sensorhub.wsgi"
    start = command.index("gunicorn")
    assert "migrate" in command[:start], "web must run 'manage.py migrate --no-input' before gunicorn starts"
    assert "--no-input" in command[command.index("migrate"):start], "web's migrate must run with --no-input"
    assert "collectstatic" in command[:start], "web must run 'manage.py collectstatic' before gunicorn starts"
    assert "8000" in command[start:], "web's gunicorn should listen on port 8000"


def test_it_waits_for_healthy_dependencies():
    for name in APP_SERVICES:
        depends = service(name).get("depends_on")
        assert isinstance(depends, dict), f"service {name!r} should use depends_on with conditions"
        for dependency in ("db", "redis"):
            condition = (depends.get(dependency) or {}).get("condition")
            assert condition == "service_healthy", (
                f"service {name!r} should wait for {dependency} with condition: service_healthy, has {condition!r}"
            )
    for name in ("worker", "beat"):
        # web runs the migrations; the others need the tables it creates.
        condition = (service(name)["depends_on"].get("web") or {}).get("condition")
        assert condition == "service_healthy", f"service {name!r} should wait for a healthy web (migrations applied)"


def test_it_pings_the_worker_by_its_own_node_name():
    worker = service("worker")
    command = as_text(worker.get("command"))
    assert re.search(r"celery\s.*-A\s+sensorhub\s.*\bworker\b", command), "worker should run 'celery -A sensorhub worker'"
    node = re.search(r"(?:--hostname|-n)[=\s]+(\S+)", command)
    prefix = node.group(1).split("@", 1)[0] if node else "celery"  # celery's default node name is celery@%h
    check = as_text(worker["healthcheck"]["test"])
    assert "inspect ping" in check, "worker healthcheck should be 'celery -A sensorhub inspect ping -d <node>'"
    # $$HOSTNAME reaches the container as $HOSTNAME, the same name celery's %h expands to.
    assert re.search(rf"{re.escape(prefix)}@\$\$\{{?HOSTNAME\b", check), (
        f"worker healthcheck should ping {prefix}@$$HOSTNAME, the worker's node name; it runs {check!r}"
    )


def test_it_runs_beat_with_the_database_scheduler():
    command = as_text(service("beat").get("command"))
    assert re.search(r"\bbeat\b", command), "beat service does not run 'celery -A sensorhub beat'"
    assert "django_celery_beat.schedulers:DatabaseScheduler" in command, "beat should use the DatabaseScheduler"


def test_it_runs_mlflow_with_persistent_stores():
    mlflow = service("mlflow")
    assert mlflow.get("image", "").startswith("ghcr.io/mlflow/mlflow:"), "mlflow should use the official image"
    command = as_text(mlflow.get("command"))
    assert "mlflow server" in command, "mlflow service should run 'mlflow server'"
    assert "--host 0.0.0.0" in command and "--port 5000" in command, "mlflow should listen on 0.0.0.0:5000"
    mounts = [entry.split(":")[1] for entry in mlflow.get("volumes", []) if isinstance(entry, str) and ":" in entry]
    store = re.search(r"--backend-store-uri\s+sqlite:///(\S+)", command)
    assert store, "mlflow should keep its backend store in SQLite"
    artifacts = re.search(r"--(?:artifacts-destination|default-artifact-root)\s+(\S+)", command)
    assert artifacts, "mlflow should set an artifact location"
    for label, path in (("backend store", store.group(1)), ("artifact root", artifacts.group(1))):
        absolute = "/" + path.lstrip("/")
        assert any(absolute.startswith(mount.rstrip("/") + "/") for mount in mounts), (
            f"mlflow's {label} {absolute} is not on a mounted volume ({mounts}); it would be lost on restart"
        )


def test_it_documents_every_interpolated_variable():
    referenced = set()
    for text in strings(compose()):
        for match in _INTERPOLATION.finditer(text):
            name = match.group(1) or match.group(2)
            if name:
                referenced.add(name)
    undocumented = sorted(referenced - documented_variables())
    assert not undocumented, f"{COMPOSE_FILE.name} uses {', '.join(undocumented)} but .env.example does not document it (them)"


def test_it_builds_a_slim_non_root_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM\s+python:3\.11-slim", dockerfile, re.MULTILINE), "Dockerfile should build FROM python:3.11-slim"
    assert "requirements/base.txt" in dockerfile, "Dockerfile should install requirements/base.txt"
    assert re.search(r"PYTHONUNBUFFERED=1", dockerfile), "Dockerfile should set PYTHONUNBUFFERED=1 so logs are not held"
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "Dockerfile should end up running as a non-root USER"


def test_it_keeps_secrets_and_local_data_out_of_the_build_context():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for pattern in (".env", "var", ".git", ".venv"):
        assert pattern in ignored, f".dockerignore should exclude {pattern!r}"


def test_it_defines_the_services_the_readme_names():
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    line = next((line for line in README.read_text().splitlines() if line.strip().startswith("Compose services:")), None)
    if line is None:
        pytest.skip("README.md has no 'Compose services:' line")
    named = [name.strip(" `*_.") for name in line.split(":", 1)[1].split(",")]
    named = [name for name in named if name]
    assert named, "README.md's 'Compose services:' line names no service"
    missing = [name for name in named if name not in services()]
    assert not missing, f"README.md names compose service(s) {', '.join(missing)} that {COMPOSE_FILE.name} lacks"
