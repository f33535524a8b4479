//! IAM and KMS policy documents (key policies, trust policies, identity policies): parsed as each
//! kind, then evaluated for a few requests (never panics; an unparsable document is an error).
#![no_main]

use std::collections::BTreeMap;

use aws_emulator::policy::{authorize, authorize_identity, evaluate, parse, Caller, PolicyKind, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else { return };
    let root = Caller::root("111122223333");
    let other = Caller::root("444455556666");
    let mut context = BTreeMap::new();
    context.insert("aws:sourcevpce".to_owned(), vec!["vpce-0123456789abcdef0".to_owned()]);
    context.insert("sts:externalid".to_owned(), vec!["external-id".to_owned()]);
    context.insert("aws:sourceip".to_owned(), vec!["10.0.0.1".to_owned()]);
    context.insert("kms:encryptioncontext:cluster".to_owned(), vec!["c1".to_owned()]);
    for kind in [PolicyKind::Resource, PolicyKind::Identity] {
        let Ok(policy) = parse(doc, kind) else { continue };
        for caller in [&root, &other] {
            for (action, resource) in [
                ("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                ("sts:AssumeRole", "arn:aws:iam::111122223333:role/atlas"),
                ("ec2:CreateVpcEndpoint", "*"),
            ] {
                let req = Request { caller, action, resource, context: &context };
                let _ = evaluate(&policy, &req);
                let _ = authorize(&policy, std::slice::from_ref(&policy), &req, "111122223333");
                let _ = authorize_identity(std::slice::from_ref(&policy), &req);
            }
        }
    }
});
