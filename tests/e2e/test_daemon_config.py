"""The daemons' settings from a TOML file, CPUCOMPAT_* variables and flags, real processes.

Precedence is flag > environment > file > default; `--print-config` shows each value's
source; an unknown key or a wrong type is a one-line error (exit 2) naming the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.daemons import Daemon, run_cli


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _clean_env() -> dict[str, str]:
    """This environment without any CPUCOMPAT_ setting that would change the outcome."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CPUCOMPAT_")}


def test_config_file_sets_listen_and_db(tmp_path: Path) -> None:
    db = tmp_path / "from-file.db"
    config = _write(tmp_path / "c.toml", f'listen = "127.0.0.1:0"\ndb = "{db}"\n')
    daemon = Daemon(["coordinator", "--config", str(config)], tmp_path / "c.log")
    try:
        assert daemon.address.startswith("127.0.0.1:")
        assert f"(db {db})" in daemon.output()
        assert db.exists()
        assert run_cli("hosts", "--coordinator", daemon.address, "--json").returncode == 0
    finally:
        assert daemon.stop() == 0


def test_environment_beats_file_and_flag_beats_environment(tmp_path: Path) -> None:
    file_db, env_db, flag_db = (tmp_path / f"{n}.db" for n in ("file", "env", "flag"))
    config = _write(tmp_path / "c.toml", f'listen = "127.0.0.1:0"\ndb = "{file_db}"\n')
    env = {"CPUCOMPAT_DB": str(env_db)}
    daemon = Daemon(["coordinator", "--config", str(config)], tmp_path / "c1.log", env=env)
    try:
        assert f"(db {env_db})" in daemon.output()
    finally:
        assert daemon.stop() == 0
    daemon = Daemon(
        ["coordinator", "--config", str(config), "--db", str(flag_db)], tmp_path / "c2.log", env=env
    )
    try:
        assert f"(db {flag_db})" in daemon.output()
    finally:
        assert daemon.stop() == 0
    assert env_db.exists() and flag_db.exists() and not file_db.exists()


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", 'listen = "127.0.0.1:0"\nworkers = 77\n')
    env = {**_clean_env(), "CPUCOMPAT_CONFIG": str(config)}
    done = run_cli("coordinator", "--print-config", "--json", env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["config_file"] == str(config)
    assert doc["settings"]["workers"] == {"value": 77, "source": f"file {config}"}


def test_print_config_names_every_source(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", 'workers = 300\nadmin = ["ops", "backup"]\n')
    env = {**_clean_env(), "CPUCOMPAT_MAX_INTERVAL": "120", "CPUCOMPAT_ALLOW_REPLAYED": "yes"}
    args = ["coordinator", "--config", str(config), "--listen", "127.0.0.1:9"]
    done = run_cli(*args, "--print-config", "--json", env=env)
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["listen"] == {"value": "127.0.0.1:9", "source": "flag --listen"}
    assert settings["max_interval"] == {
        "value": 120.0,
        "source": "environment CPUCOMPAT_MAX_INTERVAL",
    }
    assert settings["allow_replayed"]["value"] is True
    assert settings["workers"] == {"value": 300, "source": f"file {config}"}
    assert settings["admin"]["value"] == ["ops", "backup"]
    assert settings["max_message_bytes"]["source"] == "default"
    text = run_cli(*args, "--print-config", env=env)
    assert text.returncode == 0
    assert "workers = 300  # file" in text.stdout
    assert 'listen = "127.0.0.1:9"  # flag --listen' in text.stdout
    # the printed TOML is itself a valid config file
    again = _write(tmp_path / "again.toml", text.stdout)
    reread = run_cli("coordinator", "--config", str(again), "--print-config", "--json", env=env)
    assert json.loads(reread.stdout)["settings"]["workers"]["value"] == 300


def test_agent_takes_required_settings_from_the_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "a.toml", 'coordinator = "127.0.0.1:7443"\ncluster = "prod"\n')
    done = run_cli("agent", "--config", str(config), "--print-config", "--json", env=_clean_env())
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["cluster"] == {"value": "prod", "source": f"file {config}"}
    missing = run_cli("agent", "--cluster", "prod", env=_clean_env())
    assert missing.returncode == 2
    assert "--coordinator is required" in missing.stderr
    assert "CPUCOMPAT_COORDINATOR" in missing.stderr


def test_unknown_key_exits_2_naming_it(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", 'listen = "127.0.0.1:0"\nworkerz = 8\n')
    for command in ("coordinator", "agent"):
        done = run_cli(command, "--config", str(config), env=_clean_env())
        assert done.returncode == 2, done.stdout
        assert "unknown key 'workerz'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert "did you mean 'workers'" in run_cli("coordinator", "--config", str(config)).stderr


def test_wrong_types_name_key_and_expected_type(tmp_path: Path) -> None:
    cases = {
        'workers = "8"': "key 'workers' must be a whole number",
        "insecure = 1": "key 'insecure' must be true or false",
        'admin = "ops"': "key 'admin' must be a list of strings",
        "listen = 7443": "key 'listen' must be a string",
        "workers = 1.5": "key 'workers' must be a whole number",
        "workers = 0": "key 'workers': '0' is not a whole number from 1",
    }
    for line, message in cases.items():
        config = _write(tmp_path / "c.toml", line + "\n")
        done = run_cli("coordinator", "--config", str(config), env=_clean_env())
        assert done.returncode == 2, line
        assert message in done.stderr, (line, done.stderr)
    bad_env = run_cli("coordinator", env={**_clean_env(), "CPUCOMPAT_INSECURE": "maybe"})
    assert bad_env.returncode == 2
    assert "CPUCOMPAT_INSECURE" in bad_env.stderr
    agent_choice = _write(tmp_path / "a.toml", 'source = "magic"\n')
    done = run_cli("agent", "--config", str(agent_choice), "--print-config", env=_clean_env())
    assert done.returncode == 2 and "'magic' is not one of instruction, devcpu" in done.stderr


def test_unreadable_or_invalid_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = run_cli("coordinator", "--config", str(tmp_path / "none.toml"), env=_clean_env())
    assert missing.returncode == 2 and "cannot read config file" in missing.stderr
    broken = _write(tmp_path / "b.toml", "listen = \n")
    done = run_cli("coordinator", "--config", str(broken), env=_clean_env())
    assert done.returncode == 2 and "is not valid TOML" in done.stderr
