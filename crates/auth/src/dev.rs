//! The tokens `triplit dev` prints.
//!
//! `triplit dev` signs two tokens with `JWT_SECRET` (default
//! [`DEV_JWT_SECRET`]) and `PROJECT_ID` (default [`DEV_PROJECT_ID`]), both
//! HS256 with `noTimestamp`, so they are deterministic. Apps hard-code them
//! (`VITE_TRIPLIT_ANON_TOKEN=…`), which is why Ferry's dev mode must print
//! byte-identical ones.

use serde_json::{Map, Value};

use crate::sign::sign_hs256;
use crate::verify::TOKEN_TYPE_CLAIM;

/// `triplit dev`'s default `TRIPLIT_JWT_SECRET`.
pub const DEV_JWT_SECRET: &str = "jwt-key-for-development-only";

/// `triplit dev`'s default `TRIPLIT_PROJECT_ID`.
pub const DEV_PROJECT_ID: &str = "local-project-id";

/// The claim `triplit dev` puts the project id in (decorative: nothing
/// checks it).
pub const PROJECT_ID_CLAIM: &str = "x-triplit-project-id";

/// The two tokens of a `triplit dev` session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevTokens {
    /// The service token (`x-triplit-token-type: secret`): bypasses
    /// permissions and unlocks the admin routes.
    pub service: String,
    /// The anonymous token (`x-triplit-token-type: anon`).
    pub anon: String,
}

/// The claims of a dev token: the type first, then the project id, as
/// `dev.tsx` writes its object literal.
fn dev_claims(token_type: &str, project_id: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert(TOKEN_TYPE_CLAIM.to_owned(), token_type.into());
    claims.insert(PROJECT_ID_CLAIM.to_owned(), project_id.into());
    claims
}

/// The service and anon tokens `triplit dev` prints for `secret` and
/// `project_id`.
pub fn dev_tokens(secret: &str, project_id: &str) -> DevTokens {
    DevTokens {
        service: sign_hs256(&dev_claims("secret", project_id), secret),
        anon: sign_hs256(&dev_claims("anon", project_id), secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenVerifier;

    #[tokio::test]
    async fn dev_tokens_verify_with_their_secret() {
        let tokens = dev_tokens("s3cret", "p1");
        let verifier = TokenVerifier::new(Some("s3cret"), None).unwrap();
        let service = verifier.verify(&tokens.service, 0).await.unwrap();
        assert!(service.is_service());
        assert_eq!(service.claims[PROJECT_ID_CLAIM], "p1");
        assert_eq!(service.expires_at_ms, None);
        let anon = verifier.verify(&tokens.anon, u64::MAX).await.unwrap();
        assert_eq!(anon.token_type.as_deref(), Some("anon"));
        assert!(!anon.is_service());
        assert!(anon.is_triplit_token());
    }

    #[test]
    fn claim_order_is_type_then_project() {
        let keys: Vec<String> = dev_claims("anon", "p").keys().cloned().collect();
        assert_eq!(keys, [TOKEN_TYPE_CLAIM, PROJECT_ID_CLAIM]);
    }
}
