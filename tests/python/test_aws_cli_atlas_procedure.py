"""The Atlas product page's IAM-role procedure, run with the real `aws` CLI (v1) against the emulator.

Page: "Encryption at Rest using your Key Management" / "Create New Role with the AWS CLI"
(shared/reference/atlas-kms-private-networking.txt). The customer creates a role whose trust
policy names Atlas's AWS principal (here: the emulator's operator account root) with
`sts:ExternalId` = the project's external id, and attaches the access policy allowing
kms:Decrypt, kms:Encrypt and kms:DescribeKey on the key. Atlas (the operator) then assumes the
role with the external id and uses the key.
"""

import base64
import json
import os
import uuid

# The page's trust policy, as printed (its "Version" value and all). The page has a typo
# (`"Action:" "sts:AssumeRole"`), which is not valid JSON; it is fixed here to `"Action": ...`.
PAGE_TRUST_POLICY = """{
  "Version": "2020-03-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "AWS": "<atlasAWSAccountArn>"
      },
      "Action": "sts:AssumeRole",
      "Condition": {
        "StringEquals": {
          "sts:ExternalId": "<atlasAssumedRoleExternalId>"
        }
      }
    }
  ]
}"""

# The page's access policy, verbatim but for the key ARN.
PAGE_ACCESS_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:DescribeKey"
      ],
      "Resource": [
        "arn:aws:kms:us-east-1:123456789012:key/12x345y6-7z89-0a12-3456-xyz123456789"
      ]
    }
  ]
}"""


def write(dirpath, name, text):
    path = os.path.join(dirpath, name)
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path


def test_aws_cli_identity_profiles(aws_cli, emulator):
    for profile, account in (("operator", emulator.operator), ("customer", emulator.customer)):
        ident = aws_cli.run("sts", "get-caller-identity", profile=profile)
        assert ident["Account"] == account.account_id
        assert ident["Arn"] == account.root_arn


def test_atlas_iam_role_procedure_with_aws_cli(aws_cli, emulator):
    work = aws_cli.workdir
    external_id = str(uuid.uuid4())
    role_name = f"atlas-kms-{uuid.uuid4().hex[:8]}"

    # The customer's key.
    key = aws_cli.run("kms", "create-key", "--description", "Atlas encryption at rest", profile="customer")[
        "KeyMetadata"
    ]
    key_arn = key["Arn"]

    # Step: create the role with the trust policy (atlasAWSAccountArn = the operator account root).
    trust = PAGE_TRUST_POLICY.replace("<atlasAWSAccountArn>", emulator.operator.root_arn).replace(
        "<atlasAssumedRoleExternalId>", external_id
    )
    write(work, "trust.json", trust)
    role = aws_cli.run(
        "iam",
        "create-role",
        "--role-name",
        role_name,
        "--assume-role-policy-document",
        "file://trust.json",
        profile="customer",
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{emulator.customer.account_id}:role/{role_name}"
    assert role["AssumeRolePolicyDocument"] == json.loads(trust)

    # Step: add the access policy to the role.
    access = PAGE_ACCESS_POLICY.replace(
        "arn:aws:kms:us-east-1:123456789012:key/12x345y6-7z89-0a12-3456-xyz123456789", key_arn
    )
    write(work, "access.json", access)
    assert (
        aws_cli.run(
            "iam",
            "put-role-policy",
            "--role-name",
            role_name,
            "--policy-name",
            "atlas-encryption-at-rest",
            "--policy-document",
            "file://access.json",
            profile="customer",
        )
        is None
    )
    got = aws_cli.run(
        "iam", "get-role-policy", "--role-name", role_name, "--policy-name", "atlas-encryption-at-rest", profile="customer"
    )
    assert got["PolicyDocument"] == json.loads(access)

    # Atlas assumes the role: only with the project's external id.
    def assume(*extra):
        return aws_cli.run(
            "sts",
            "assume-role",
            "--role-arn",
            role["Arn"],
            "--role-session-name",
            "atlas-encryption-at-rest",
            *extra,
            profile="operator",
            check=False,
        )

    for extra in (("--external-id", str(uuid.uuid4())), ()):
        denied = assume(*extra)
        assert denied.returncode != 0
        assert "AccessDenied" in denied.stderr, denied.stderr
    ok = assume("--external-id", external_id)
    assert ok.returncode == 0, ok.stderr
    assumed = json.loads(ok.stdout)
    creds = assumed["Credentials"]
    assert assumed["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{emulator.customer.account_id}:assumed-role/{role_name}/atlas-encryption-at-rest"
    )
    ident = aws_cli.run("sts", "get-caller-identity", creds=creds)
    assert ident["Arn"] == assumed["AssumedRoleUser"]["Arn"]

    # Atlas uses the key with the assumed credentials.
    write(work, "plain.bin", b"atlas data key material")
    ctx = "atlas=encryption-at-rest"

    def encrypt(check=True):
        return aws_cli.run(
            "kms",
            "encrypt",
            "--key-id",
            key_arn,
            "--plaintext",
            "fileb://plain.bin",
            "--encryption-context",
            ctx,
            creds=creds,
            check=check,
        )

    enc = encrypt()
    assert enc["KeyId"] == key_arn
    write(work, "ct.bin", base64.b64decode(enc["CiphertextBlob"]))
    dec = aws_cli.run(
        "kms", "decrypt", "--ciphertext-blob", "fileb://ct.bin", "--encryption-context", ctx, creds=creds
    )
    assert base64.b64decode(dec["Plaintext"]) == b"atlas data key material"
    described = aws_cli.run("kms", "describe-key", "--key-id", key_arn, creds=creds)["KeyMetadata"]
    assert described["KeyState"] == "Enabled"

    # Not in the access policy: refused.
    gdk = aws_cli.run("kms", "generate-data-key", "--key-id", key_arn, "--key-spec", "AES_256", creds=creds, check=False)
    assert gdk.returncode != 0 and "AccessDeniedException" in gdk.stderr, gdk.stderr
    # The operator's own root keys are not named by the key policy.
    direct = aws_cli.run("kms", "encrypt", "--key-id", key_arn, "--plaintext", "fileb://plain.bin", profile="operator", check=False)
    assert direct.returncode != 0 and "AccessDeniedException" in direct.stderr, direct.stderr

    # The customer disables the key: Atlas's encrypt fails with DisabledException.
    assert aws_cli.run("kms", "disable-key", "--key-id", key["KeyId"], profile="customer") is None
    failed = encrypt(check=False)
    assert failed.returncode != 0
    assert "DisabledException" in failed.stderr, failed.stderr

    # ... and re-enables it: it works again.
    aws_cli.run("kms", "enable-key", "--key-id", key["KeyId"], profile="customer")
    assert encrypt()["KeyId"] == key_arn
