"""docker-compose.yml, .env.example and the Dockerfile, checked offline (no Docker engine here)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from streams.cli import main
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = ("kafka", "worker", "web")


def setting_names() -> set[str]:
    names = {f"TURNOUT_{name.upper()}" for name in Settings.model_fields}
    return names | {"KAFKA_BOOTSTRAP_SERVERS"}


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_service_has_an_image_or_a_build_that_exists():
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists(), name
        if "image" in service:
            assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", service["image"]), f"{name}: pin the image version"


def test_long_running_services_have_health_checks_and_restart_policies():
    for name in LONG_RUNNING:
        assert SERVICES[name]["healthcheck"]["test"], name
        assert SERVICES[name]["restart"] in ("unless-stopped", "always", "on-failure"), name


def test_the_broker_keeps_its_log_on_a_named_volume():
    kafka = SERVICES["kafka"]
    source_by_target = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    assert source_by_target.get(kafka["environment"]["KAFKA_LOG_DIRS"]) in COMPOSE["volumes"]


def test_every_variable_the_app_services_get_is_a_real_setting():
    known = setting_names()
    for name, service in SERVICES.items():
        if service.get("build"):
            assert service.get("env_file") == ".env", name
            assert set(service.get("environment", {})) <= known, name
    assert set(env_example()) <= known
    assert {"TURNOUT_ORGANIZER_TOKEN", "TURNOUT_PERSON_KEY_SECRET"} <= set(env_example())


def test_the_production_template_keeps_the_defaults_the_readme_recommends():
    # It turned standby replicas on, which the README measured to halve two workers' rate for
    # nothing (tables in memory replay their changelog either way): an outside probe.
    assert env_example()["TURNOUT_STANDBY_REPLICAS"] == str(Settings.model_fields["standby_replicas"].default) == "0"


def test_env_example_as_is_loads_into_the_settings_model(monkeypatch):
    for key, value in env_example().items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.organizer_token is None and s.twilio_from is None  # empty means unset, not ""


@pytest.mark.parametrize("service", [name for name, s in SERVICES.items() if s.get("build")])
def test_each_app_service_runs_a_real_cli_command(service):
    command = SERVICES[service]["command"]
    assert command[0] == "turnout"
    args = [a for a in command[1:] if not a.startswith("-")][:2]
    result = CliRunner().invoke(main, [*args[: 2 if args[0] == "topics" else 1], "--help"])
    assert result.exit_code == 0, result.output
    for option in (a.split("=")[0] for a in command[1:] if a.startswith("--")):
        assert option in result.output, f"{service}: {option} is not an option of {args}"


def test_the_dockerfile_is_slim_pinned_and_runs_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\S+", text, re.M)


def test_the_image_builds_from_what_the_dockerfile_copies_at_the_pinned_versions():
    """What building the package reads (pyproject's readme and license files, the packages)
    is copied into the image, and the install takes constraints.txt's versions."""
    text = (ROOT / "Dockerfile").read_text()
    copied = {name for line in re.findall(r"^COPY (.+) \S+$", text, re.M) for name in line.split()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {project["project"]["readme"], *project["project"]["license-files"], "constraints.txt",
              *(p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"])}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    assert re.search(r"^RUN pip install -c constraints\.txt \.$", text, re.M)


def test_the_installed_console_script_is_the_one_compose_calls():
    out = subprocess.run([Path(sys.executable).parent / "turnout", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "worker" in out.stdout and "web" in out.stdout


def test_the_readme_gives_the_coalition_file_to_the_containers_user():
    # `turnout partners add` writes coalition.toml 0600 (partner secrets); mounted read-only into
    # containers running as another uid, it could not be read (an outside probe, by reading).
    uid = re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())[1]
    assert "USER turnout" in (ROOT / "Dockerfile").read_text()
    assert f"chown {uid} coalition.toml" in (ROOT / "README.md").read_text()


def test_the_mobilize_poller_has_a_service_of_its_own():
    """`turnout up` runs the poller when a partner is connected to Mobilize; compose ran none, so
    in production a connected partner was never polled (an outside probe, by reading). It exits
    when no partner is connected, so it is started on request (a profile), not by default."""
    [poller] = [s for s in SERVICES.values() if s.get("command") == ["turnout", "mobilize", "poll"]]
    assert poller["profiles"] == ["mobilize"] and poller["restart"] == "unless-stopped"
    assert poller["volumes"] == SERVICES["web"]["volumes"] and poller["environment"]["TURNOUT_COALITION"] == "/app/coalition.toml"
    assert "docker compose --profile mobilize up -d" in (ROOT / "README.md").read_text()
