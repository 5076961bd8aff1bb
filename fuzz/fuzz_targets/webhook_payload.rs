//! A webhook body as the gateway reads it: either content type GitHub sends, then the event's payload.
//! Beyond "no panic": a JSON body is its own payload; a JSON payload sent form-encoded reads back byte for byte
//! and classifies exactly as the JSON delivery; whatever classifies as a failure names a repository
//! `owner/name`, a commit and a failing conclusion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_domain::{EventKind, Label};
use sre_gateway::webhook::{Classified, classify, payload};

const FORM: &str = "application/x-www-form-urlencoded";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let event = EventKind::ALL[usize::from(selector & 0x0f) % EventKind::ALL.len()];
    let json = payload(Some("application/json; charset=utf-8"), body).expect("JSON is always accepted");
    assert_eq!(json.as_ref(), body);
    let as_json = classify(event, body);
    check(&as_json);

    // The same bytes as a form body (whatever they are).
    if let Ok(p) = payload(Some(FORM), body) {
        check(&classify(event, &p));
    }
    // The JSON sent the way GitHub sends a form delivery, between other fields.
    if let Ok(text) = std::str::from_utf8(body) {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("a", "1")
            .append_pair("payload", text)
            .append_pair("payload_extra", "x")
            .finish();
        let p = payload(
            Some(if selector & 0x10 == 0 { FORM } else { "Application/X-WWW-Form-Urlencoded; charset=x" }),
            form.as_bytes(),
        )
        .expect("a form with a payload field");
        assert_eq!(p.as_ref(), body, "form-encoded payload read back differently");
        assert_eq!(format!("{:?}", classify(event, &p)), format!("{as_json:?}"), "content types disagree");
    }
});

fn check<E: std::fmt::Debug>(c: &Result<Classified, E>) {
    if let Ok(Classified::Failure(f) | Classified::Pending(f)) = c {
        assert_eq!(f.repo.split('/').count(), 2, "{f:?}");
        assert!(!f.head_sha.is_empty(), "{f:?}");
        assert!(f.conclusion.is_some_and(|c| c.is_failure()), "{f:?}");
    }
    match c {
        Ok(Classified::Failure(f)) => assert!(!f.job_name.is_empty()),
        Ok(Classified::Pending(f)) => assert!(f.job_name.is_empty()),
        _ => {}
    }
}
