//! Ferry against recorded verdicts of jose 4.15.9, the library the Triplit
//! 1.x server verifies tokens with (`tests/keys/jose-cases.json`, made by
//! `tests/keys/jose-oracle.mjs`).
//!
//! Every case must give the same outcome: the same claims when jose accepts,
//! and the same Triplit error name and context message when it refuses.

mod common;

use ferry_auth::TokenVerifier;
use serde_json::Value;

#[tokio::test]
async fn every_case_matches_jose() {
    let recorded: Value = serde_json::from_str(&common::fixture("jose-cases.json")).unwrap();
    assert_eq!(recorded["jose"], "4.15.9");
    let now_ms = recorded["now_ms"].as_u64().unwrap();
    let cases = recorded["cases"].as_array().unwrap();
    assert!(cases.len() >= 80);
    let mut mismatches = Vec::new();
    for case in cases {
        let label = case["label"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let jwt = case.get("jwt").and_then(Value::as_str);
        let external = case.get("ext").and_then(Value::as_str);
        let expect = &case["expect"];
        let verifier = TokenVerifier::new(jwt, external).unwrap_or_else(|e| panic!("{label}: {e}"));
        let got = verifier.verify(token, now_ms).await;
        let same = match (&got, expect.get("ok")) {
            (Ok(verified), Some(claims)) => Value::Object(verified.claims.clone()) == *claims,
            (Err(err), None) => {
                expect["name"] == err.triplit_name()
                    && expect["context"] == err.context().unwrap_or_default().as_str()
            }
            _ => false,
        };
        if !same {
            mismatches.push(format!("{label}: got {got:?}, jose says {expect}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
