"""Fixtures: one `atrest aws serve` process per test session, boto3 clients, the real `aws` CLI.

The binary comes from $ATREST_BIN (scripts/test-python sets it); the emulator listens on a free
loopback port (`--aws-listen 127.0.0.1:0`) with a temporary data directory, prints one JSON line
with its URL, and writes `<data-dir>/aws-credentials` with the profiles [operator] and [customer].
"""

import configparser
import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def atrest_bin() -> str:
    path = os.environ.get("ATREST_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
        path = str(pathlib.Path(target) / "debug" / "atrest")
    if not os.path.isabs(path):
        path = str(REPO / path)
    if not os.access(path, os.X_OK):
        pytest.exit(f"no atrest binary at {path}: build it or set ATREST_BIN", returncode=2)
    return path


@dataclass
class Account:
    name: str
    account_id: str
    access_key_id: str
    secret_access_key: str

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"


class Emulator:
    def __init__(self, url, data_dir, credentials_file, accounts, info):
        self.url = url
        self.data_dir = data_dir
        self.credentials_file = credentials_file
        self.accounts = accounts
        self.info = info

    @property
    def operator(self) -> Account:
        return self.accounts["operator"]

    @property
    def customer(self) -> Account:
        return self.accounts["customer"]

    def client(self, service, account=None, region=REGION, creds=None):
        """A boto3 client signed as `account` (root keys) or with explicit session `creds`."""
        if creds is None:
            account = account or self.customer
            creds = {
                "aws_access_key_id": account.access_key_id,
                "aws_secret_access_key": account.secret_access_key,
            }
        return boto3.session.Session(region_name=region, **creds).client(
            service,
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None


def _read_url_line(proc, timeout):
    """The first stdout line that is a JSON object with a "url"."""
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"atrest aws serve printed no URL within {timeout}s")
        if line is None:
            raise RuntimeError(f"atrest aws serve exited ({proc.wait()}) before printing its URL")
        line = line.strip()
        if line.startswith("{"):
            info = json.loads(line)
            if "url" in info:
                return info


@pytest.fixture(scope="session")
def emulator():
    data_dir = tempfile.mkdtemp(prefix="atrest-pytest-")
    log = open(os.path.join(data_dir, "emulator.log"), "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [atrest_bin(), "aws", "serve", "--data-dir", data_dir, "--aws-listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        text=True,
    )
    try:
        info = _read_url_line(proc, timeout=60)
        creds_file = info.get("credentialsFile") or os.path.join(data_dir, "aws-credentials")
        parser = configparser.ConfigParser()
        assert parser.read(creds_file), f"no credentials file at {creds_file}"
        ids = {"operator": info["operatorAccountId"], "customer": info["customerAccountId"]}
        accounts = {
            name: Account(
                name,
                ids[name],
                parser[name]["aws_access_key_id"],
                parser[name]["aws_secret_access_key"],
            )
            for name in ("operator", "customer")
        }
        yield Emulator(info["url"].rstrip("/"), data_dir, creds_file, accounts, info)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if os.environ.get("ATREST_PYTEST_KEEP") != "1":
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            sys.stderr.write(f"\nemulator data dir kept: {data_dir}\n")


@pytest.fixture
def kms(emulator):
    return emulator.client("kms")


@pytest.fixture
def key(kms):
    """A fresh customer key (id)."""
    return kms.create_key(Description=f"pytest {uuid.uuid4()}")["KeyMetadata"]["KeyId"]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


class AwsCli:
    """The real `aws` CLI (awscli v1 from the venv) pointed at the emulator."""

    def __init__(self, emulator, workdir):
        self.emulator = emulator
        self.workdir = workdir
        exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
        if exe is None:
            pytest.fail("the aws CLI is not installed (scripts/test-python installs awscli)")
        self.exe = exe

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                "AWS_SHARED_CREDENTIALS_FILE": self.emulator.credentials_file,
                "AWS_CONFIG_FILE": os.path.join(self.workdir, "no-aws-config"),
                "AWS_DEFAULT_REGION": REGION,
                "AWS_PAGER": "",
                "AWS_MAX_ATTEMPTS": "1",
            }
        )
        env.update(extra or {})
        return env

    def run(self, *args, profile=None, creds=None, check=True):
        """Runs `aws --endpoint-url URL [--profile P] ARGS --output json`.

        `creds` is an STS Credentials dict: it is passed as AWS_ACCESS_KEY_ID/... instead of a
        profile. Returns the parsed JSON output (or the CompletedProcess when check=False).
        """
        cmd = [self.exe, "--endpoint-url", self.emulator.url, "--output", "json"]
        if profile:
            cmd += ["--profile", profile]
        cmd += list(args)
        extra = {}
        if creds:
            extra = {
                "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["SessionToken"],
            }
        proc = subprocess.run(
            cmd,
            cwd=self.workdir,
            env=self.env(extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if not check:
            return proc
        if proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture
def aws_cli(emulator, tmp_path):
    return AwsCli(emulator, str(tmp_path))
