"""STS and IAM through boto3 against `atrest aws serve`."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def trust_policy(principal_arn, external_id=None):
    stmt = {"Effect": "Allow", "Principal": {"AWS": principal_arn}, "Action": "sts:AssumeRole"}
    if external_id is not None:
        stmt["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [stmt]}


def role_name():
    return f"pytest-{uuid.uuid4().hex[:12]}"


def test_get_caller_identity(emulator):
    for account in (emulator.customer, emulator.operator):
        ident = emulator.client("sts", account).get_caller_identity()
        assert ident["Account"] == account.account_id
        assert ident["Arn"] == account.root_arn
        assert ident["UserId"] == account.account_id
    assert emulator.operator.account_id != emulator.customer.account_id

    bad = emulator.client(
        "sts", creds={"aws_access_key_id": emulator.customer.access_key_id, "aws_secret_access_key": "z" * 40}
    )
    with pytest.raises(ClientError) as e:
        bad.get_caller_identity()
    assert error_code(e) == "SignatureDoesNotMatch"
    unknown = emulator.client("sts", creds={"aws_access_key_id": "AKIA" + "Q" * 16, "aws_secret_access_key": "z" * 40})
    with pytest.raises(ClientError) as e:
        unknown.get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"


def test_assume_role_with_external_id(emulator):
    iam = emulator.client("iam")
    external_id = str(uuid.uuid4())
    name = role_name()
    role = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(emulator.operator.root_arn, external_id))
    )["Role"]
    sts = emulator.client("sts", emulator.operator)

    for kwargs in ({}, {"ExternalId": "wrong"}):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role["Arn"], RoleSessionName="atlas", **kwargs)
        assert error_code(e) == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    out = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="atlas", ExternalId=external_id, DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{emulator.customer.account_id}:assumed-role/{name}/atlas"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:atlas"

    session = emulator.client(
        "sts",
        creds={
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
    )
    ident = session.get_caller_identity()
    assert ident["Arn"] == out["AssumedRoleUser"]["Arn"]
    assert ident["Account"] == emulator.customer.account_id

    # The customer account itself is not named by the trust policy.
    with pytest.raises(ClientError) as e:
        emulator.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="x1", ExternalId=external_id)
    assert error_code(e) == "AccessDenied"

    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="atlas", ExternalId=external_id, DurationSeconds=43200)  # over the role's MaxSessionDuration (3600)
    assert error_code(e) == "ValidationError"


def test_assume_role_without_external_id(emulator):
    iam = emulator.client("iam")
    role = iam.create_role(
        RoleName=role_name(), AssumeRolePolicyDocument=json.dumps(trust_policy(emulator.operator.root_arn))
    )["Role"]
    out = emulator.client("sts", emulator.operator).assume_role(RoleArn=role["Arn"], RoleSessionName="no-ext")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    missing = f"arn:aws:iam::{emulator.customer.account_id}:role/does-not-exist"
    with pytest.raises(ClientError) as e:
        emulator.client("sts", emulator.operator).assume_role(RoleArn=missing, RoleSessionName="x1")
    assert error_code(e) == "AccessDenied"


def test_iam_role_lifecycle(emulator):
    iam = emulator.client("iam")
    name = role_name()
    trust = trust_policy(emulator.operator.root_arn, "ext-1")
    role = iam.create_role(
        RoleName=name,
        Path="/atrest/",
        Description="pytest role",
        MaxSessionDuration=7200,
        AssumeRolePolicyDocument=json.dumps(trust),
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{emulator.customer.account_id}:role/atrest/{name}"
    assert role["RoleId"].startswith("AROA")
    assert role["Path"] == "/atrest/"
    assert role["MaxSessionDuration"] == 7200
    # botocore URL-decodes and parses the policy document into a dict.
    assert role["AssumeRolePolicyDocument"] == trust

    got = iam.get_role(RoleName=name)["Role"]
    assert got["RoleId"] == role["RoleId"]
    assert any(r["RoleName"] == name for r in iam.list_roles()["Roles"])

    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    assert error_code(e) == "EntityAlreadyExists"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName=role_name(), AssumeRolePolicyDocument='{"Statement": 5}')
    assert error_code(e) == "MalformedPolicyDocument"

    updated = trust_policy(emulator.operator.root_arn, "ext-2")
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(updated))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == updated
    sts = emulator.client("sts", emulator.operator)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="ext-1")
    assert error_code(e) == "AccessDenied"
    sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="ext-2")

    access = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="kms", PolicyDocument=json.dumps(access))
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["kms"]
    got = iam.get_role_policy(RoleName=name, PolicyName="kms")
    assert got["RoleName"] == name and got["PolicyName"] == "kms"
    assert got["PolicyDocument"] == access
    with pytest.raises(ClientError) as e:
        iam.get_role_policy(RoleName=name, PolicyName="other")
    assert error_code(e) == "NoSuchEntity"

    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName=name)
    assert error_code(e) == "DeleteConflict"
    iam.delete_role_policy(RoleName=name, PolicyName="kms")
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=name)
    assert error_code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_assumed_role_kms_access_follows_role_policy(emulator):
    """Cross-account KMS: key in the customer account, caller = a session of a customer role."""
    kms = emulator.client("kms")
    key = kms.create_key(Description="pytest role access")["KeyMetadata"]
    iam = emulator.client("iam")
    ext = str(uuid.uuid4())
    name = role_name()
    role = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(emulator.operator.root_arn, ext))
    )["Role"]
    creds = emulator.client("sts", emulator.operator).assume_role(
        RoleArn=role["Arn"], RoleSessionName="atlas", ExternalId=ext
    )["Credentials"]
    session_kms = emulator.client(
        "kms",
        creds={
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
    )
    # No role policy yet: implicit deny.
    with pytest.raises(ClientError) as e:
        session_kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"

    iam.put_role_policy(
        RoleName=name,
        PolicyName="kms",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": [key["Arn"]]}],
            }
        ),
    )
    blob = session_kms.encrypt(KeyId=key["Arn"], Plaintext=b"role")["CiphertextBlob"]
    assert session_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"role"
    with pytest.raises(ClientError) as e:
        session_kms.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")
    assert error_code(e) == "AccessDeniedException"
