"""The product page's "Enable Role-Based Access for Your Encryption Key for a Project" against
`moto_server` in its authenticating mode: a second AWS implementation, independent of atrest's
embedded one.

One `moto_server` (from the venv) and one `atrest serve --aws real --aws-endpoint-url <moto>` run
per module, each on a free loopback port with a temporary directory. moto starts with
INITIAL_NO_AUTH_ACTION_COUNT=3: exactly the three bootstrap calls below are unauthenticated (they
create the "customer" IAM user, its access key and its admin policy); every later request must be
SigV4-signed with the keys of an IAM user created in moto (or of a role session moto issued).
The customer then creates the "operator" user, whose keys are atrest's own identity
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; identity policy: sts:AssumeRole, sts:GetCallerIdentity).
moto is single-account (123456789012): customer and operator share it.

What moto cannot model is detected by a direct probe of moto first, then either worked around
(the account-root trust principal, key-ARN-scoped identity policies, CreateKey's default KeyUsage:
the adaptation is printed) or skipped with the reason (moto's unreadable KMS auth errors, key
policies beyond a Deny on kms:DescribeKey). Every note is printed in a "moto_server as a second AWS" section at the end of the
pytest run, and skip reasons are the pytest skip reasons.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from requests.auth import HTTPDigestAuth

from conftest import atrest_bin

REGION = "us-east-1"
ACCEPT = "application/vnd.atlas.2023-01-01+json"
PAGE_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"]
BOOTSTRAP_UNAUTHENTICATED_CALLS = 3
HTTP_TIMEOUT = 60  # atrest makes up to four AWS calls per request, each bounded by --aws-call-timeout
START_TIMEOUT = 60


# --- notes printed at the end of the run -------------------------------------------------------


class _MotoNotes:
    """A pytest plugin registered at runtime: prints what moto could not model and what was adapted."""

    def __init__(self):
        self.lines = []

    def add(self, kind, text):
        line = f"{kind}: {text}"
        if line not in self.lines:
            self.lines.append(line)

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.section("moto_server as a second AWS")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def notes(request):
    plugin = _MotoNotes()
    request.config.pluginmanager.register(plugin, f"atrest-moto-notes-{id(plugin)}")
    return plugin


def skip(notes, test, reason):
    notes.add(f"SKIPPED {test}", reason)
    pytest.skip(reason)


# --- processes ---------------------------------------------------------------------------------


class _Lines:
    """Reads a child's stream on a thread; `wait_for(pattern)` returns the first match."""

    def __init__(self, stream, log_path):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.log_path = log_path
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern, proc, timeout, what):
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.closed:
                    raise RuntimeError(f"{what} exited ({proc.wait()}) before printing {pattern!r}: {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{what} printed no {pattern!r} within {timeout}s: {self.tail()}")
                self.cond.wait(left)

    def tail(self):
        return "".join(self.lines[-20:])


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _clean_env():
    """The caller's AWS settings never leak into a child (no profile, no shared credentials)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "INITIAL_NO_AUTH_ACTION_COUNT"}


def _moto_server_exe():
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if exe is None:
        pytest.fail("moto_server is not installed (tests/python/requirements.txt pins moto[server])")
    return exe


class Moto:
    def __init__(self, url):
        self.url = url
        self.account_id = "123456789012"
        self.customer_keys = None
        self.operator_keys = None

    def client(self, service, keys):
        """A boto3 client signed with `keys` = (access key id, secret[, session token])."""
        creds = {"aws_access_key_id": keys[0], "aws_secret_access_key": keys[1]}
        if len(keys) > 2:
            creds["aws_session_token"] = keys[2]
        return boto3.session.Session(region_name=REGION, **creds).client(
            service,
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

    def customer(self, service):
        return self.client(service, self.customer_keys)

    def operator(self, service):
        return self.client(service, self.operator_keys)

    @property
    def operator_user_arn(self):
        return f"arn:aws:iam::{self.account_id}:user/operator"


def _admin_policy(actions, resource="*"):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto_server with IAM authentication on after the first three (bootstrap) requests."""
    exe = _moto_server_exe()
    workdir = tmp_path_factory.mktemp("moto")
    env = _clean_env()
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_UNAUTHENTICATED_CALLS)
    # Port 0: the kernel picks a free loopback port and moto_server prints it ("Running on URL").
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", "0"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    lines = _Lines(proc.stdout, workdir / "moto_server.log")
    try:
        m = lines.wait_for(r"Running on (http://127\.0\.0\.1:\d+)", proc, START_TIMEOUT, "moto_server")
        moto = Moto(m.group(1))
        # The three unauthenticated requests (any keys are accepted while they last).
        anon = moto.client("iam", ("AKIAANONYMOUSBOOTSTR", "bootstrap"))
        anon.create_user(UserName="customer")
        k = anon.create_access_key(UserName="customer")["AccessKey"]
        anon.put_user_policy(UserName="customer", PolicyName="admin", PolicyDocument=_admin_policy("*"))
        moto.customer_keys = (k["AccessKeyId"], k["SecretAccessKey"])
        # From here on, everything is signed by users that exist in moto.
        iam = moto.customer("iam")
        iam.create_user(UserName="operator")
        k = iam.create_access_key(UserName="operator")["AccessKey"]
        iam.put_user_policy(
            UserName="operator",
            PolicyName="atrest-operator",
            PolicyDocument=_admin_policy(["sts:AssumeRole", "sts:GetCallerIdentity"]),
        )
        moto.operator_keys = (k["AccessKeyId"], k["SecretAccessKey"])
        moto.account_id = moto.operator("sts").get_caller_identity()["Account"]
        yield moto
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def moto_auth(moto, notes):
    """Whether moto rejects keys it never issued (its authenticating mode is really on)."""
    try:
        moto.client("sts", ("AKIAUNKNOWNUNKNOWN00", "not-a-secret")).get_caller_identity()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code == "InvalidClientTokenId", e.response
        return True
    notes.add(
        "FALLBACK",
        "moto_server accepted keys it never issued: INITIAL_NO_AUTH_ACTION_COUNT did not switch "
        "authentication on; the scenario runs against moto without authentication",
    )
    return False


class Atlas:
    """atrest's Admin API with HTTP Digest, as an Atlas client calls it."""

    def __init__(self, url, public_key, private_key, org_id):
        self.url = url
        self.auth = HTTPDigestAuth(public_key, private_key)
        self.org_id = org_id
        self.session = requests.Session()

    def call(self, method, path, body=None):
        headers = {"Accept": ACCEPT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        r = self.session.request(
            method,
            self.url + path,
            auth=self.auth,
            headers=headers,
            data=None if body is None else json.dumps(body),
            timeout=HTTP_TIMEOUT,
        )
        return r

    def ok(self, method, path, body=None):
        r = self.call(method, path, body)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


def _read_credentials(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                out[k] = v
    return out


@pytest.fixture(scope="module")
def atrest(moto, moto_auth):
    """`atrest serve --aws real` pointed at moto, with the operator user's keys as its identity."""
    data_dir = tempfile.mkdtemp(prefix="atrest-moto-")
    env = _clean_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": moto.operator_keys[0],
            "AWS_SECRET_ACCESS_KEY": moto.operator_keys[1],
            # No config or credentials file of the caller's may be read.
            "AWS_CONFIG_FILE": os.path.join(data_dir, "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(data_dir, "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    env = {k: v for k, v in env.items() if not k.startswith("ATREST_")}
    env["ATREST_LOG"] = "info"
    stderr_log = open(os.path.join(data_dir, "atrest.stderr.log"), "wb")
    proc = subprocess.Popen(
        [
            atrest_bin(), "serve",
            "--data-dir", data_dir,
            "--listen", "127.0.0.1:0",
            "--aws", "real",
            "--aws-endpoint-url", moto.url,
            "--aws-call-timeout", "10s",
        ],
        cwd=data_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_log,
        env=env,
        text=True,
    )
    try:
        lines = _Lines(proc.stdout, os.path.join(data_dir, "atrest.stdout.log"))
        try:
            m = lines.wait_for(r"atrest listening on (http://\S+)", proc, START_TIMEOUT, "atrest serve")
        except RuntimeError as e:
            with open(os.path.join(data_dir, "atrest.stderr.log"), encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"{e}\natrest stderr:\n{f.read()[-4000:]}") from None
        creds = _read_credentials(os.path.join(data_dir, "bootstrap-credentials"))
        yield Atlas(m.group(1), creds["ATREST_PUBLIC_KEY"], creds["ATREST_PRIVATE_KEY"], creds["ATREST_ORG_ID"])
    finally:
        _stop(proc)
        stderr_log.close()
        if os.environ.get("ATREST_PYTEST_KEEP") != "1":
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            sys.stderr.write(f"\natrest (moto) data dir kept: {data_dir}\n")


# --- the customer's side in moto, and moto's limits ----------------------------------------------


def _trust_policy(principals, external_id):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principals},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ],
        }
    )


class Customer:
    """The customer's steps, signed as the customer user."""

    def __init__(self, moto, notes):
        self.moto = moto
        self.notes = notes
        self.kms = moto.customer("kms")
        self.iam = moto.customer("iam")
        self._root_principal_ok = None
        self._key_resource_ok = None
        self._default_key_usage = None

    def create_key(self):
        """A symmetric encryption key, as `aws kms create-key` makes it by default on AWS."""
        if self._default_key_usage is None:
            meta = self.kms.create_key(Description=f"atrest moto probe {uuid.uuid4()}")["KeyMetadata"]
            described = self.kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
            self._default_key_usage = described.get("KeyUsage") or ""
            if self._default_key_usage != "ENCRYPT_DECRYPT":
                self.notes.add(
                    "ADAPTED",
                    "moto's CreateKey without KeyUsage leaves KeyUsage out of DescribeKey "
                    f"(got {described.get('KeyUsage')!r}; AWS answers ENCRYPT_DECRYPT), and atrest refuses a key "
                    "whose usage is not ENCRYPT_DECRYPT (INVALID_ATTRIBUTE); keys are created with "
                    "KeyUsage=ENCRYPT_DECRYPT and KeySpec=SYMMETRIC_DEFAULT given explicitly",
                )
        meta = self.kms.create_key(
            Description=f"atrest moto {uuid.uuid4()}", KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT"
        )["KeyMetadata"]
        return meta["KeyId"], meta["Arn"]

    def assume_as_operator(self, role_arn, external_id):
        out = self.moto.operator("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="atrest-probe", ExternalId=external_id
        )
        c = out["Credentials"]
        return (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    def root_principal_ok(self):
        """Does moto let atrest's user assume a role whose trust policy names only `...:root`?"""
        if self._root_principal_ok is None:
            name = f"probe-root-{uuid.uuid4().hex[:8]}"
            arn = self.iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=_trust_policy(f"arn:aws:iam::{self.moto.account_id}:root", "probe-external-id")
            )["Role"]["Arn"]
            try:
                self.assume_as_operator(arn, "probe-external-id")
                self._root_principal_ok = True
            except ClientError as e:
                assert e.response["Error"]["Code"] == "AccessDenied", e.response
                self._root_principal_ok = False
                self.notes.add(
                    "ADAPTED",
                    "moto matches trust-policy principals literally: the account principal "
                    f"arn:aws:iam::{self.moto.account_id}:root (atlasAWSAccountArn) does not cover atrest's "
                    "IAM user, so each trust policy names atlasAWSAccountArn and also "
                    f"{self.moto.operator_user_arn}",
                )
            finally:
                self.iam.delete_role(RoleName=name)
        return self._root_principal_ok

    def trust_principals(self, atlas_arn):
        if self.root_principal_ok():
            return atlas_arn
        return [atlas_arn, self.moto.operator_user_arn]

    def access_policy_resource(self, key_arns):
        """moto checks KMS actions of a role session against the resource "*", never the key ARN."""
        if self._key_resource_ok is None:
            key_id, key_arn = self.create_key()
            name = f"probe-res-{uuid.uuid4().hex[:8]}"
            arn = self.iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=_trust_policy(self.trust_principals("probe-atlas-arn"), "probe-external-id")
            )["Role"]["Arn"]
            self.iam.put_role_policy(RoleName=name, PolicyName="kms", PolicyDocument=_admin_policy(PAGE_ACTIONS, [key_arn]))
            kms = self.moto.client("kms", self.assume_as_operator(arn, "probe-external-id"))
            try:
                kms.describe_key(KeyId=key_arn)
                self._key_resource_ok = True
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
                self._key_resource_ok = False
                self.notes.add(
                    "ADAPTED",
                    "moto evaluates a role session's KMS calls against the resource \"*\", so an access "
                    "policy scoped to the key ARN denies everything; the access policies name Resource \"*\"",
                )
            finally:
                self.iam.delete_role_policy(RoleName=name, PolicyName="kms")
                self.iam.delete_role(RoleName=name)
        return list(key_arns) if self._key_resource_ok else "*"

    def create_atlas_role(self, name, atlas_arn, external_id, key_arns, actions=PAGE_ACTIONS):
        arn = self.iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=_trust_policy(self.trust_principals(atlas_arn), external_id)
        )["Role"]["Arn"]
        self.put_access_policy(name, key_arns, actions)
        return arn

    def put_access_policy(self, name, key_arns, actions=PAGE_ACTIONS):
        self.iam.put_role_policy(
            RoleName=name,
            PolicyName="atlas-kms-access",
            PolicyDocument=_admin_policy(actions, self.access_policy_resource(key_arns)),
        )


@pytest.fixture(scope="module")
def customer(moto, notes):
    return Customer(moto, notes)


class Project:
    def __init__(self, atlas, name):
        self.atlas = atlas
        self.g = atlas.ok("POST", "/api/atlas/v2/groups", {"name": name, "orgId": atlas.org_id})["id"]
        role = atlas.ok("POST", f"/api/atlas/v2/groups/{self.g}/cloudProviderAccess", {"providerName": "AWS"})
        self.role = role
        self.role_id = role["roleId"]
        self.atlas_arn = role["atlasAWSAccountArn"]
        self.external_id = role["atlasAssumedRoleExternalId"]

    def authorize(self, role_arn):
        return self.atlas.call(
            "PATCH",
            f"/api/atlas/v2/groups/{self.g}/cloudProviderAccess/{self.role_id}",
            {"providerName": "AWS", "iamAssumedRoleArn": role_arn},
        )

    def patch_ear(self, aws_kms):
        return self.atlas.call("PATCH", f"/api/atlas/v2/groups/{self.g}/encryptionAtRest", {"awsKms": aws_kms})

    def enable(self, key):
        return self.patch_ear({"enabled": True, "customerMasterKeyID": key, "region": "US_EAST_1", "roleId": self.role_id})

    def ear(self):
        return self.atlas.ok("GET", f"/api/atlas/v2/groups/{self.g}/encryptionAtRest")


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(r):
    try:
        return r.json().get("errorCode")
    except ValueError:
        return None


def enabled_project(atlas, customer, prefix):
    """A project whose Encryption at Rest is enabled with a role and a valid key (the baseline)."""
    p = Project(atlas, _name(prefix))
    key_id, key_arn = customer.create_key()
    role_name = _name(prefix)
    role_arn = customer.create_atlas_role(role_name, p.atlas_arn, p.external_id, [key_arn])
    r = p.authorize(role_arn)
    assert r.status_code == 200, r.text
    r = p.enable(key_id)
    assert r.status_code == 200 and r.json()["awsKms"]["valid"] is True, r.text
    return p, key_id, key_arn, role_name


def assert_refused_unchanged(p, r, code, key_id):
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    assert error_code(r) == code, r.text
    ear = p.ear()["awsKms"]
    assert (ear["customerMasterKeyID"], ear["valid"], ear["enabled"]) == (key_id, True, True), ear


def _moto_json_error_readable(resp):
    """moto answers IAM-auth refusals of JSON-protocol services (KMS) with an XML body and no
    x-amzn-ErrorType header; botocore then reports the HTTP status as the code."""
    return resp["Error"]["Code"] not in ("403", "400", "")


# --- the tests ---------------------------------------------------------------------------------


def test_enable_role_based_access_for_a_project(atrest, customer, moto, moto_auth, notes):
    """The product page, step by step, against moto."""
    if not moto_auth:
        notes.add("FALLBACK", "the scenario below ran against moto without authentication")
    a = atrest
    p = Project(a, _name("cmk"))
    # 1. Atlas side: atrest's principal (its account root from GetCallerIdentity) and the external id.
    assert p.atlas_arn == f"arn:aws:iam::{moto.account_id}:root", p.role
    assert len(p.external_id) == 36 and p.role["providerName"] == "AWS", p.role
    assert p.role["iamAssumedRoleArn"] is None and p.role["featureUsages"] == [], p.role

    # 2. Customer side in moto: a key, and a role trusting that principal with that external id.
    key_id, key_arn = customer.create_key()
    role_arn = customer.create_atlas_role(_name("atlas-kms"), p.atlas_arn, p.external_id, [key_arn])
    assert role_arn.startswith(f"arn:aws:iam::{moto.account_id}:role/"), role_arn

    # 3. Authorize: atrest assumes the role in moto with the external id, signed as its IAM user.
    r = p.authorize(role_arn)
    assert r.status_code == 200, r.text
    assert r.json()["iamAssumedRoleArn"] == role_arn and isinstance(r.json()["authorizedDate"], str), r.text

    # 4. Enable: DescribeKey and an Encrypt/Decrypt round trip as the role session, in moto.
    r = p.enable(key_id)
    assert r.status_code == 200, r.text
    aws_kms = r.json()["awsKms"]
    assert aws_kms["valid"] is True and aws_kms["enabled"] is True, aws_kms
    assert aws_kms["roleId"] == p.role_id and aws_kms["customerMasterKeyID"] == key_id, aws_kms
    assert "secretAccessKey" not in r.text

    listing = a.ok("GET", f"/api/atlas/v2/groups/{p.g}/cloudProviderAccess")
    assert listing["awsIamRoles"][0]["featureUsages"] == [
        {"featureType": "ENCRYPTION_AT_REST", "featureId": {"groupId": p.g}}
    ], listing
    # GET re-checks the key in moto.
    assert p.ear()["awsKms"]["valid"] is True

    # A key ARN works as well as a key id.
    r = p.enable(key_arn)
    assert r.status_code == 200 and r.json()["awsKms"]["valid"] is True, r.text


def test_disabled_key_is_refused(atrest, customer):
    p, key_id, key_arn, role_name = enabled_project(atrest, customer, "disabled")
    new_id, new_arn = customer.create_key()
    customer.put_access_policy(role_name, [key_arn, new_arn])
    customer.kms.disable_key(KeyId=new_id)
    assert customer.kms.describe_key(KeyId=new_id)["KeyMetadata"]["KeyState"] == "Disabled"
    r = p.patch_ear({"customerMasterKeyID": new_id})
    assert_refused_unchanged(p, r, "AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED", key_id)
    # The key in use disabled in moto: GET re-checks it and reports it invalid, then valid again.
    customer.kms.disable_key(KeyId=key_id)
    assert p.ear()["awsKms"]["valid"] is False
    customer.kms.enable_key(KeyId=key_id)
    assert p.ear()["awsKms"]["valid"] is True


def test_key_pending_deletion_is_refused(atrest, customer):
    p, key_id, key_arn, role_name = enabled_project(atrest, customer, "pending")
    new_id, new_arn = customer.create_key()
    customer.put_access_policy(role_name, [key_arn, new_arn])
    customer.kms.schedule_key_deletion(KeyId=new_id, PendingWindowInDays=7)
    assert customer.kms.describe_key(KeyId=new_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    r = p.patch_ear({"customerMasterKeyID": new_id})
    assert_refused_unchanged(p, r, "AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION", key_id)


def test_bad_access_keys_are_refused(atrest, customer, moto, moto_auth, notes):
    test = "test_bad_access_keys_are_refused"
    if not moto_auth:
        skip(notes, test, "moto runs without authentication, so it accepts any access key")
    bogus = ("AKIAAAAAAAAAAAAAAAAA", "wrong-secret-wrong-secret-wrong-secret00")
    _, key_arn = customer.create_key()
    p = Project(atrest, _name("legacy-keys"))
    r = p.patch_ear(
        {"enabled": True, "customerMasterKeyID": key_arn, "region": "US_EAST_1",
         "accessKeyID": bogus[0], "secretAccessKey": bogus[1]}
    )
    # Whatever moto answers, a refused key is refused and nothing is stored.
    assert r.status_code >= 400, r.text
    assert p.ear()["awsKms"].get("enabled") is not True
    if (r.status_code, error_code(r)) == (400, "INVALID_AWS_CREDENTIALS"):
        return
    try:
        moto.client("kms", bogus).list_keys()
        skip(notes, test, "moto's authenticating mode accepted an access key it never issued")
    except ClientError as e:
        if not _moto_json_error_readable(e.response):
            skip(
                notes,
                test,
                "moto refuses the unknown key (InvalidClientTokenId) but answers KMS, a JSON-protocol "
                "service, with an XML error body and no x-amzn-ErrorType header, so no KMS client can read "
                f"the code (botocore sees Code={e.response['Error']['Code']!r}; atrest answered "
                f"{r.status_code} {error_code(r)} and stored nothing)",
            )
    pytest.fail(f"moto refuses the key readably ({e.response['Error']}) but atrest answered {r.status_code} {r.text}")


def test_wrong_external_id_cannot_assume_role(atrest, customer, moto, moto_auth, notes):
    test = "test_wrong_external_id_cannot_assume_role"
    if not moto_auth:
        skip(notes, test, "moto runs without authentication, so it evaluates no trust policy")
    p = Project(atrest, _name("wrong-ext"))
    _, key_arn = customer.create_key()
    role_name = _name("wrong-ext")
    role_arn = customer.create_atlas_role(role_name, p.atlas_arn, "not-the-external-id", [key_arn])
    # Does moto evaluate the sts:ExternalId condition at all?
    try:
        customer.assume_as_operator(role_arn, p.external_id)
        skip(notes, test, "moto does not evaluate the sts:ExternalId condition of trust policies")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", e.response
    r = p.authorize(role_arn)
    assert (r.status_code, error_code(r)) == (400, "CANNOT_ASSUME_ROLE"), r.text
    role = atrest.ok("GET", f"/api/atlas/v2/groups/{p.g}/cloudProviderAccess/{p.role_id}")
    assert role["iamAssumedRoleArn"] is None, role
    # The role is not authorized: enabling with it is refused too.
    r = p.enable(key_arn)
    assert (r.status_code, error_code(r)) == (400, "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED"), r.text


def test_role_without_encrypt_permission(atrest, customer, moto, moto_auth, notes):
    test = "test_role_without_encrypt_permission"
    if not moto_auth:
        skip(notes, test, "moto runs without authentication, so it enforces no identity policy")
    p, key_id, key_arn, role_name = enabled_project(atrest, customer, "no-encrypt")
    # Does moto refuse kms:Encrypt to a role session whose policy lacks it, and readably?
    probe_id, probe_arn = customer.create_key()
    probe_role_arn = customer.create_atlas_role(
        _name("probe-noenc"), p.atlas_arn, "probe-external-id", [probe_arn], ["kms:Decrypt", "kms:DescribeKey"]
    )
    kms = moto.client("kms", customer.assume_as_operator(probe_role_arn, "probe-external-id"))
    try:
        kms.encrypt(KeyId=probe_arn, Plaintext=b"\0" * 32)
        skip(notes, test, "moto's authenticating mode does not enforce identity policies for assumed-role sessions")
    except ClientError as e:
        probe = e.response
    new_id, new_arn = customer.create_key()
    customer.put_access_policy(role_name, [key_arn, new_arn], ["kms:Decrypt", "kms:DescribeKey"])
    r = p.patch_ear({"customerMasterKeyID": new_id})
    # Whatever moto answers, the new key is refused and the working configuration stays.
    assert r.status_code >= 400, r.text
    ear = p.ear()["awsKms"]
    assert (ear["customerMasterKeyID"], ear["valid"]) == (key_id, True), ear
    if (r.status_code, error_code(r)) == (400, "NO_PERMISSION_TO_ENCRYPT_DECRYPT"):
        return
    if not _moto_json_error_readable(probe):
        skip(
            notes,
            test,
            "moto enforces the role's identity policy (kms:Encrypt is denied) but answers KMS, a "
            "JSON-protocol service, with an XML AccessDenied body and no x-amzn-ErrorType header, so "
            f"no KMS client can read it as AccessDeniedException (botocore sees Code={probe['Error']['Code']!r}; "
            f"atrest answered {r.status_code} {error_code(r)} and kept the configuration)",
        )
    pytest.fail(f"moto denies kms:Encrypt readably ({probe['Error']}) but atrest answered {r.status_code} {r.text}")


def test_key_policy_denying_describe_key(atrest, customer, moto_auth, notes):
    """moto's one key-policy rule: a Deny statement for kms:DescribeKey (principals ignored)."""
    p, key_id, key_arn, role_name = enabled_project(atrest, customer, "key-policy-deny")
    new_id, new_arn = customer.create_key()
    customer.put_access_policy(role_name, [key_arn, new_arn])
    deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "deny", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}
    customer.kms.put_key_policy(KeyId=new_id, PolicyName="default", Policy=json.dumps(deny))
    try:
        customer.kms.describe_key(KeyId=new_id)
        skip(notes, "test_key_policy_denying_describe_key", "moto does not evaluate Deny statements of key policies")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    r = p.patch_ear({"customerMasterKeyID": new_id})
    assert_refused_unchanged(p, r, "NO_PERMISSION_TO_ENCRYPT_DECRYPT", key_id)


def test_key_policy_not_granting_the_role(atrest, customer, moto, notes):
    """On AWS a key whose policy grants neither the account nor the role cannot be used by it."""
    test = "test_key_policy_not_granting_the_role"
    p, key_id, key_arn, role_name = enabled_project(atrest, customer, "key-policy-grant")
    new_id, new_arn = customer.create_key()
    customer.put_access_policy(role_name, [key_arn, new_arn])
    only_someone_else = {"Version": "2012-10-17", "Statement": [
        {"Sid": "someone-else", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{moto.account_id}:user/customer"},
         "Action": "kms:*", "Resource": "*"}]}
    customer.kms.put_key_policy(KeyId=new_id, PolicyName="default", Policy=json.dumps(only_someone_else))
    role_arn = atrest.ok("GET", f"/api/atlas/v2/groups/{p.g}/cloudProviderAccess/{p.role_id}")["iamAssumedRoleArn"]
    kms = moto.client("kms", customer.assume_as_operator(role_arn, p.external_id))
    try:
        kms.encrypt(KeyId=new_arn, Plaintext=b"\0" * 32)
        skip(
            notes,
            test,
            "moto does not model key policies beyond a Deny on kms:DescribeKey: a key whose policy "
            "grants only another principal still encrypts for the role (Allow statements and principals "
            "are ignored)",
        )
    except ClientError:
        pass
    r = p.patch_ear({"customerMasterKeyID": new_id})
    assert_refused_unchanged(p, r, "NO_PERMISSION_TO_ENCRYPT_DECRYPT", key_id)
