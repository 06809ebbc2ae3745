//! Published test vectors (auth.md §4.2): RFC 7515 Appendix A, RFC 8037
//! Appendix A.4, and Clerk's session-token fixture.

mod common;

use common::NOW_MS;
use ferry_auth::{KeyFamily, TokenVerifier, VerificationKey};

/// The payload shared by RFC 7515 A.1–A.3: `{"iss":"joe",\r\n "exp":1300819380,
/// \r\n "http://example.com/is_root":true}`.
const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
/// One second before the vectors' `exp` (2011-03-22T18:43:00Z).
const BEFORE_EXP_MS: u64 = 1_300_819_379_000;
const AT_EXP_MS: u64 = 1_300_819_380_000;

/// RFC 7515 A.1 (HS256), with the symmetric key of RFC 7517 A.3 as an `oct` JWK.
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const A1_KEY: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

/// RFC 7515 A.2 (RS256) signature and public key.
const A2_SIGNATURE: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A2_KEY: &str = r#"{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}"#;

/// RFC 7515 A.3 (ES256) signature and public key.
const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// RFC 7515 A.5 = RFC 7519 §6.1: an unsecured JWT.
const A5_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";

/// RFC 8037 A.4: an Ed25519 JWS over a non-JSON payload, and the A.2 key.
const RFC8037_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
const RFC8037_KEY: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// Clerk's `mockJwt` and `mockRsaJwk` (clerk/javascript,
/// packages/backend/src/fixtures/index.ts, MIT licence): a real-shaped RS256
/// session token, valid for t in [1666648240, 1666648310).
const CLERK_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yR0lvUWhiVXB5MGhYN0IyY1ZrdVRNaW5Yb0QiLCJ0eXAiOiJKV1QifQ.eyJhenAiOiJodHRwczovL2FjY291bnRzLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsImV4cCI6MTY2NjY0ODMxMCwiaWF0IjoxNjY2NjQ4MjUwLCJpc3MiOiJodHRwczovL2NsZXJrLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsIm5iZiI6MTY2NjY0ODI0MCwic2lkIjoic2Vzc18yR2JEQjRlbk5kQ2E1dlMxenBDM1h6Zzl0SzkiLCJzdWIiOiJ1c2VyXzJHSXBYT0VwVnlKdzUxcmtabjlLbW5jNlN4ciJ9.n1Usc-DLDftqA0Xb-_2w8IGs4yjCmwc5RngwbSRvwevuZOIuRoeHmE2sgCdEvjfJEa7ewL6EVGVcM557TWPW--g_J1XQPwBy8tXfz7-S73CEuyRFiR97L2AHRdvRtvGtwR-o6l8aHaFxtlmfWbQXfg4kFJz2UGe9afmh3U9-f_4JOZ5fa3mI98UMy1-bo20vjXeWQ9aGrqaxHQxjnzzC-1Kpi5LdPvhQ16H0dPB8MHRTSM5TAuLKTpPV7wqixmbtcc2-0k6b9FKYZNqRVTaIyV-lifZloBvdzlfOF8nW1VVH_fx-iW5Q3hovHFcJIULHEC1kcAYTubbxzpgeVQepGg";
/// Clerk's `mockInvalidSignatureJwt`: a tampered `azp` under the same signature.
const CLERK_BAD_SIGNATURE_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yR0lvUWhiVXB5MGhYN0IyY1ZrdVRNaW5Yb0QiLCJ0eXAiOiJKV1QifQ.eyJhenAiOiJodHRwczovL2FjY291bnRzLnRhbXBlcmVkLWRvbWFpbi5kZXYiLCJleHAiOjE2NjY2NDgzMTAsImlhdCI6MTY2NjY0ODI1MCwiaXNzIjoiaHR0cHM6Ly9jbGVyay5pbnNwaXJlZC5wdW1hLTc0LmxjbC5kZXYiLCJuYmYiOjE2NjY2NDgyNDAsInNpZCI6InNlc3NfMkdiREI0ZW5OZENhNXZTMXpwQzNYemc5dEs5Iiwic3ViIjoidXNlcl8yR0lwWE9FcFZ5Snc1MXJrWm45S21uYzZTeHIifQ.n1Usc-DLDftqA0Xb-_2w8IGs4yjCmwc5RngwbSRvwevuZOIuRoeHmE2sgCdEvjfJEa7ewL6EVGVcM557TWPW--g_J1XQPwBy8tXfz7-S73CEuyRFiR97L2AHRdvRtvGtwR-o6l8aHaFxtlmfWbQXfg4kFJz2UGe9afmh3U9-f_4JOZ5fa3mI98UMy1-bo20vjXeWQ9aGrqaxHQxjnzzC-1Kpi5LdPvhQ16H0dPB8MHRTSM5TAuLKTpPV7wqixmbtcc2-0k6b9FKYZNqRVTaIyV-lifZloBvdzlfOF8nW1VVH_fx-iW5Q3hovHFcJIULHEC1kcAYTubbxzpgeVQepGg";
const CLERK_JWK: &str = r#"{"use":"sig","kty":"RSA","kid":"ins_2GIoQhbUpy0hX7B2cVkuTMinXoD","alg":"RS256","n":"u0tNUitBZmcGYMWcqvaRBaJe0XmTQ738RHYoHjhYANyeOkysuu4L_Rqr-fmTXsbebrTp7_OewIqsJXImEWB_WQ3HN9lAkOMCCGDU1udsz_sl1Kwy5JZ7x8Nr4ghXJagQzEF0Ovsj7_TPsBJGkVJ-OiZsTXCe7EAmG5gNGGPBE5Gu14Rwb-eZ5r9RCAaPfhxR1yHYTAvCrku_6i2os7RLpT6UockKtX4QQSH2CMveNwqd6LdwhV8USZrczB2VYkAImngJC745-EWek1sVExYkqheGvC3J8O7D9H4JtaKD2zaq0rJzsIU0zb_wwax5-La-uRuPYvTXlO8B8IK4jjNMCQ","e":"AQAB"}"#;

fn external(key: &str) -> TokenVerifier {
    TokenVerifier::new(Some("unused-jwt-secret"), Some(key)).unwrap()
}

#[tokio::test]
async fn rfc7515_a1_hs256_with_oct_jwk() {
    let verifier = external(A1_KEY);
    assert_eq!(verifier.external_key_family(), Some(KeyFamily::Hmac));
    let verified = verifier.verify(A1_TOKEN, BEFORE_EXP_MS).await.unwrap();
    assert_eq!(verified.claims["iss"], "joe");
    assert_eq!(verified.claims["http://example.com/is_root"], true);
    assert_eq!(verified.expires_at_ms, Some(AT_EXP_MS));
    assert_eq!(
        verifier
            .verify(A1_TOKEN, AT_EXP_MS)
            .await
            .unwrap_err()
            .code(),
        "expired"
    );
    assert_eq!(
        verifier.verify(A1_TOKEN, NOW_MS).await.unwrap_err().code(),
        "expired"
    );
}

#[tokio::test]
async fn rfc7515_a2_rs256() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}.{A2_SIGNATURE}");
    let verifier = external(A2_KEY);
    assert_eq!(
        verifier.verify(&token, BEFORE_EXP_MS).await.unwrap().claims["iss"],
        "joe"
    );
    assert_eq!(
        verifier.verify(&token, AT_EXP_MS).await.unwrap_err().code(),
        "expired"
    );
    // The same token against the A.1 HMAC key: RS256 does not fit it.
    let err = external(A1_KEY)
        .verify(&token, BEFORE_EXP_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "key_mismatch");
}

#[tokio::test]
async fn rfc7515_a3_es256() {
    let token = format!("eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}.{A3_SIGNATURE}");
    let verifier = external(A3_KEY);
    assert_eq!(verifier.external_key_family(), Some(KeyFamily::EcP256));
    assert_eq!(
        verifier.verify(&token, BEFORE_EXP_MS).await.unwrap().claims["iss"],
        "joe"
    );
    let mut flipped = token.into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        verifier
            .verify(&flipped, BEFORE_EXP_MS)
            .await
            .unwrap_err()
            .code(),
        "bad_signature"
    );
}

#[tokio::test]
async fn rfc7515_a5_unsecured_jwt_is_refused() {
    for key in [A1_KEY, A2_KEY, A3_KEY, RFC8037_KEY] {
        let err = external(key)
            .verify(A5_TOKEN, BEFORE_EXP_MS)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "algorithm_not_allowed", "{key}");
        assert_eq!(err.triplit_name(), "InvalidTokenSignatureError");
    }
    let hmac = TokenVerifier::new(Some("secret"), None).unwrap();
    let err = hmac.verify(A5_TOKEN, BEFORE_EXP_MS).await.unwrap_err();
    assert_eq!(err.code(), "algorithm_not_allowed");
}

#[tokio::test]
async fn rfc8037_a4_ed25519() {
    let key = VerificationKey::parse(RFC8037_KEY).unwrap();
    assert_eq!(key.family(), KeyFamily::Ed25519);
    key.verify_signature(RFC8037_TOKEN).unwrap();
    // As a token, its payload is not JSON, so decoding fails first (400).
    let err = external(RFC8037_KEY)
        .verify(RFC8037_TOKEN, NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "malformed");
    assert_eq!(err.triplit_name(), "InvalidTokenPayloadError");
}

#[tokio::test]
async fn clerk_session_token() {
    let verifier = external(CLERK_JWK);
    let verified = verifier.verify(CLERK_JWT, 1_666_648_250_000).await.unwrap();
    assert_eq!(verified.claims["sub"], "user_2GIpXOEpVyJw51rkZn9Kmnc6Sxr");
    assert_eq!(verified.claims["sid"], "sess_2GbDB4enNdCa5vS1zpC3Xzg9tK9");
    assert_eq!(verified.token_type, None);
    assert_eq!(verified.expires_at_ms, Some(1_666_648_310_000));
    // The whole validity window, and both edges.
    assert!(verifier.verify(CLERK_JWT, 1_666_648_240_000).await.is_ok());
    assert!(verifier.verify(CLERK_JWT, 1_666_648_309_999).await.is_ok());
    let early = verifier
        .verify(CLERK_JWT, 1_666_648_239_999)
        .await
        .unwrap_err();
    assert_eq!(early.code(), "not_yet_valid");
    let late = verifier
        .verify(CLERK_JWT, 1_666_648_310_000)
        .await
        .unwrap_err();
    assert_eq!(late.code(), "expired");
    // The tampered fixture fails on its signature.
    let err = verifier
        .verify(CLERK_BAD_SIGNATURE_JWT, 1_666_648_250_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
}
