"""Security basics that must never regress: no secrets in the repository, credentials only from
the environment or conf/local, servers on loopback by default."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
APPS = ("etl_app", "ml_app", "user_app")


def test_no_secrets_in_the_repository():
    """detect-secrets over every file git tracks (a planted AWS key or password is found)."""
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "detect-secrets"),
            "scan",
            "--exclude-files",
            r"uv\.lock$",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    findings = {
        path: [f"line {r['line_number']}: {r['type']}" for r in results]
        for path, results in json.loads(proc.stdout)["results"].items()
    }
    assert findings == {}


def test_credentials_come_only_from_the_environment_or_conf_local():
    for path in ROOT.glob("*/conf/base/credentials.yml"):
        for key, value in yaml.safe_load(path.read_text()).items():
            for field, setting in value.items():
                assert str(setting).startswith("${oc.env:"), (path, key, field)
    ignored = (ROOT / ".gitignore").read_text()
    assert "*/conf/local/*" in ignored and "conf/shared.local.yml" in ignored


def test_every_server_binds_loopback_by_default():
    for app in ("user_app", "etl_app"):  # decision service, featurization service
        online = yaml.safe_load((ROOT / app / "conf/base/parameters_online.yml").read_text())
        assert online["online"]["host"] == "127.0.0.1", app
    for app in ("ml_app", "user_app"):
        mlflow_conf = yaml.safe_load((ROOT / app / "conf/base/mlflow.yml").read_text())
        assert mlflow_conf["ui"]["host"] == "127.0.0.1"
    makefile = (ROOT / "Makefile").read_text()
    servers = re.findall(r"^\t.*\b(?:mlflow ui|viz run|mlflow models serve)\b.*$", makefile, re.M)
    assert servers and all("127.0.0.1" in line for line in servers), servers
    assert "0.0.0.0" not in makefile
