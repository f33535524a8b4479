"""KMS through boto3 against `atrest aws serve`."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

CTX = {"atlas:groupId": "5f1e8f0a2b3c4d5e6f708192", "purpose": "pytest"}


def test_create_describe_list(kms, emulator):
    created = kms.create_key(Description="pytest create", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    key_id = created["KeyId"]
    uuid.UUID(key_id)  # key ids are UUIDs
    assert created["Arn"] == f"arn:aws:kms:us-east-1:{emulator.customer.account_id}:key/{key_id}"
    assert created["AWSAccountId"] == emulator.customer.account_id
    assert created["Enabled"] is True
    assert created["KeyState"] == "Enabled"
    assert created["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert created["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert created["Description"] == "pytest create"
    assert created["KeyManager"] == "CUSTOMER"
    assert created.get("MultiRegion") is False

    for ref in (key_id, created["Arn"]):
        described = kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert described["KeyId"] == key_id
        assert described["Arn"] == created["Arn"]

    listed = []
    for page in kms.get_paginator("list_keys").paginate():
        listed += page["Keys"]
    assert {"KeyId": key_id, "KeyArn": created["Arn"]} in listed

    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=str(uuid.uuid4()))
    assert error_code(e) == "NotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_encrypt_decrypt_with_encryption_context(kms, key):
    arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    enc = kms.encrypt(KeyId=key, Plaintext=b"top secret", EncryptionContext=CTX)
    assert enc["KeyId"] == arn
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = enc["CiphertextBlob"]
    assert b"top secret" not in blob

    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CTX)
    assert dec["Plaintext"] == b"top secret"
    assert dec["KeyId"] == arn
    # Naming the key on Decrypt is allowed; context key order does not matter.
    reordered = dict(reversed(list(CTX.items())))
    assert kms.decrypt(CiphertextBlob=blob, KeyId=key, EncryptionContext=reordered)["Plaintext"] == b"top secret"

    for wrong in ({**CTX, "purpose": "other"}, {"purpose": "pytest"}, None):
        kwargs = {"CiphertextBlob": blob}
        if wrong is not None:
            kwargs["EncryptionContext"] = wrong
        with pytest.raises(ClientError) as e:
            kms.decrypt(**kwargs)
        assert error_code(e) == "InvalidCiphertextException"

    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext=CTX)
    assert error_code(e) == "InvalidCiphertextException"

    other = kms.create_key(Description="pytest other")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, KeyId=other, EncryptionContext=CTX)
    assert error_code(e) == "IncorrectKeyException"


def test_generate_data_key(kms, key):
    dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=CTX)
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=CTX)["Plaintext"] == dk["Plaintext"]

    assert len(kms.generate_data_key(KeyId=key, KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key, NumberOfBytes=64)["Plaintext"]) == 64

    wp = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256", EncryptionContext=CTX)
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"], EncryptionContext=CTX)["Plaintext"]) == 32

    assert len(kms.generate_random(NumberOfBytes=48)["Plaintext"]) == 48


def test_re_encrypt(kms, key):
    dest = kms.create_key(Description="pytest re-encrypt destination")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"move me", EncryptionContext=CTX)["CiphertextBlob"]
    new_ctx = {"purpose": "re-encrypted"}
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=CTX,
        DestinationKeyId=dest["KeyId"],
        DestinationEncryptionContext=new_ctx,
    )
    assert out["KeyId"] == dest["Arn"]
    assert out["SourceKeyId"] == kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    dec = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=new_ctx)
    assert dec["Plaintext"] == b"move me"
    assert dec["KeyId"] == dest["Arn"]

    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dest["KeyId"])  # context missing
    assert error_code(e) == "InvalidCiphertextException"


def test_aliases_as_key_id(kms, key, emulator):
    name = f"alias/pytest-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=name, TargetKeyId=key)
    alias_arn = f"arn:aws:kms:us-east-1:{emulator.customer.account_id}:{name}"

    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == key
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"via alias"

    aliases = kms.list_aliases(KeyId=key)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [name]
    assert aliases[0]["AliasArn"] == alias_arn
    assert aliases[0]["TargetKeyId"] == key
    assert any(a["AliasName"] == name for a in kms.list_aliases()["Aliases"])

    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name, TargetKeyId=key)
    assert error_code(e) == "AlreadyExistsException"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/aws/reserved", TargetKeyId=key)
    assert error_code(e) in ("InvalidAliasNameException", "NotAuthorizedException", "AccessDeniedException")

    other = kms.create_key(Description="pytest alias target 2")["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName=name, TargetKeyId=other)
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other
    kms.delete_alias(AliasName=name)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=name)
    assert error_code(e) == "NotFoundException"


def test_disable_enable(kms, key):
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and meta["Enabled"] is False
    for call in (
        lambda: kms.encrypt(KeyId=key, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "DisabledException"
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_schedule_and_cancel_deletion(kms, key):
    blob = kms.encrypt(KeyId=key, Plaintext=b"doomed")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=3)  # the window is 7..30 days
    assert error_code(e) == "ValidationException"
    out = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 7
    assert "DeletionDate" in out
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta

    for call in (
        lambda: kms.encrypt(KeyId=key, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.enable_key(KeyId=key),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"

    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)  # already pending
    assert error_code(e) == "KMSInvalidStateException"

    kms.cancel_key_deletion(KeyId=key)
    # As in AWS, a key whose deletion is cancelled comes back Disabled.
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"doomed"


def test_key_policy_get_put(kms, key, emulator):
    assert kms.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
    default = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    principals = [s.get("Principal", {}).get("AWS") for s in default["Statement"]]
    assert emulator.customer.root_arn in principals

    policy = {
        "Version": "2012-10-17",
        "Id": "pytest-policy",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": emulator.customer.root_arn},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "No encrypt with this context",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "forbidden"}},
            },
        ],
    }
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) == policy
    kms.encrypt(KeyId=key, Plaintext=b"ok", EncryptionContext={"purpose": "allowed"})
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key, Plaintext=b"no", EncryptionContext={"purpose": "forbidden"})
    assert error_code(e) == "AccessDeniedException"

    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy="{not json")
    assert error_code(e) == "MalformedPolicyDocumentException"


def test_cross_account_needs_key_policy(emulator, key):
    """The operator account is not named by the default key policy of a customer key."""
    operator_kms = emulator.client("kms", emulator.operator)
    arn = emulator.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as e:
        operator_kms.encrypt(KeyId=arn, Plaintext=b"x")
    assert error_code(e) == "AccessDeniedException"


def material_version(blob):
    assert blob[0] == 1
    n = blob[1]
    return int.from_bytes(blob[2 + n : 6 + n], "big")


def test_rotation_on_demand_keeps_old_ciphertexts(kms, key):
    kms.enable_key_rotation(KeyId=key)
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True

    before = kms.encrypt(KeyId=key, Plaintext=b"before rotation", EncryptionContext=CTX)["CiphertextBlob"]
    out = kms.rotate_key_on_demand(KeyId=key)
    assert out["KeyId"].endswith(key)  # the emulator answers the key ARN
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert len(rotations) == 1 and rotations[0]["RotationType"] == "ON_DEMAND"

    after = kms.encrypt(KeyId=key, Plaintext=b"after rotation", EncryptionContext=CTX)["CiphertextBlob"]
    # Same key id, new key material: the ciphertext header (format version 1, see the crate's
    # README) names the key-material version.
    assert material_version(after) == material_version(before) + 1
    assert kms.decrypt(CiphertextBlob=before, EncryptionContext=CTX)["Plaintext"] == b"before rotation"
    assert kms.decrypt(CiphertextBlob=after, EncryptionContext=CTX)["Plaintext"] == b"after rotation"

    kms.rotate_key_on_demand(KeyId=key)
    assert len(kms.list_key_rotations(KeyId=key)["Rotations"]) == 2
    assert kms.decrypt(CiphertextBlob=before, EncryptionContext=CTX)["Plaintext"] == b"before rotation"

    kms.disable_key_rotation(KeyId=key)
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False


def test_multi_region_key_and_replicate(emulator, kms):
    primary = kms.create_key(Description="pytest mrk", MultiRegion=True)["KeyMetadata"]
    assert primary["KeyId"].startswith("mrk-")
    assert primary["MultiRegion"] is True
    assert primary["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"

    rep = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1", Description="replica")
    replica = rep["ReplicaKeyMetadata"]
    assert replica["KeyId"] == primary["KeyId"]
    assert replica["Arn"] == primary["Arn"].replace("us-east-1", "eu-west-1")
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"

    eu = emulator.client("kms", region="eu-west-1")
    assert eu.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["Arn"] == replica["Arn"]
    # Replicas share key material: each region decrypts the other's ciphertexts.
    blob = kms.encrypt(KeyId=primary["KeyId"], Plaintext=b"multi-region", EncryptionContext=CTX)["CiphertextBlob"]
    assert eu.decrypt(CiphertextBlob=blob, EncryptionContext=CTX)["Plaintext"] == b"multi-region"
    blob_eu = eu.encrypt(KeyId=replica["Arn"], Plaintext=b"from eu")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob_eu)["Plaintext"] == b"from eu"

    primary_cfg = kms.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
    assert [r["Region"] for r in primary_cfg["ReplicaKeys"]] == ["eu-west-1"]

    with pytest.raises(ClientError) as e:
        kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")
    assert error_code(e) == "AlreadyExistsException"
    single = kms.create_key(Description="pytest single-region")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.replicate_key(KeyId=single, ReplicaRegion="eu-west-1")
    assert error_code(e) == "UnsupportedOperationException"


def test_authentication_errors(emulator):
    bad_secret = emulator.client(
        "kms",
        creds={
            "aws_access_key_id": emulator.customer.access_key_id,
            "aws_secret_access_key": "x" * 40,
        },
    )
    with pytest.raises(ClientError) as e:
        bad_secret.list_keys()
    assert error_code(e) == "InvalidSignatureException"

    unknown = emulator.client(
        "kms", creds={"aws_access_key_id": "AKIA" + "Z" * 16, "aws_secret_access_key": "y" * 40}
    )
    with pytest.raises(ClientError) as e:
        unknown.list_keys()
    assert error_code(e) == "UnrecognizedClientException"


def test_validation_errors(kms, key):
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key, Plaintext=b"x" * 4097)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.generate_data_key(KeyId=key)  # neither KeySpec nor NumberOfBytes
    assert error_code(e) == "ValidationException"
