//! `X-Hub-Signature-256` checking: accepts exactly `sha256=` + the body's HMAC-SHA256 under the secret (hex,
//! either case, surrounding whitespace), computed here independently; nothing else (a flipped, truncated,
//! extended or foreign signature, another prefix) ever passes.
#![no_main]

use arbitrary::Arbitrary;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use sre_gateway::webhook::{sign, verify_signature};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    body: &'a [u8],
    mutation: Mutation<'a>,
}

#[derive(Arbitrary, Debug)]
enum Mutation<'a> {
    Exact,
    Uppercase,
    Padded,
    FlipBit(u16),
    Truncate(u8),
    Append(&'a str),
    Prefix(&'a str),
    Raw(&'a str),
    Missing,
}

fuzz_target!(|input: Input<'_>| {
    let Input { secret, body, mutation } = input;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let expected = mac.finalize().into_bytes().to_vec();
    let good = format!("sha256={}", hex::encode(&expected));
    assert_eq!(sign(secret, body), good);

    let header: Option<String> = match mutation {
        Mutation::Exact => Some(good),
        Mutation::Uppercase => Some(format!("sha256={}", hex::encode_upper(&expected))),
        Mutation::Padded => Some(format!("{good} \t")),
        Mutation::FlipBit(bit) => {
            let mut sig = expected.clone();
            sig[usize::from(bit / 8) % 32] ^= 1 << (bit % 8);
            Some(format!("sha256={}", hex::encode(sig)))
        }
        Mutation::Truncate(n) => Some(good[..good.len() - 1 - usize::from(n) % 64].to_owned()),
        Mutation::Append(s) => Some(format!("{good}{s}")),
        Mutation::Prefix(p) => Some(format!("{p}{}", hex::encode(&expected))),
        Mutation::Raw(s) => Some(s.to_owned()),
        Mutation::Missing => None,
    };
    // The independent reading of the rule: the prefix, then hex that decodes to exactly the HMAC.
    let should = header
        .as_deref()
        .and_then(|h| h.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h.trim()).ok())
        .is_some_and(|sig| sig == expected);
    assert_eq!(verify_signature(secret, body, header.as_deref()), should, "header {header:?}");
});
