//! KMS awsJson1.1 request bodies, through the embedded AWS's KMS service as an authenticated
//! caller would send them (never panics, never a 5xx other than the documented fault kinds).
#![no_main]

mod emulator;

use libfuzzer_sys::fuzz_target;

const OPS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "ReplicateKey",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let op = OPS[selector as usize % OPS.len()];
    let status = emulator::serve(Some(&format!("TrentService.{op}")), body);
    assert!(status < 500, "KMS {op} answered {status} to {:?}", String::from_utf8_lossy(body));
});
