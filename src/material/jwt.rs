//! NATS JWT v2 encoding on nkeys: header `{"typ":"JWT","alg":"ed25519-nkey"}`, claims with a
//! `nats` object, signed with the issuer's nkey. (The `nats-jwt` crate has no operator, no
//! exports/imports and no JetStream limits, without which an account gets error 10039.)

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512_256};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// Signs `nats` claims about `subject`, issued by `issuer` at `issued_at` (seconds).
pub fn sign(issuer: &nkeys::KeyPair, subject: &str, name: &str, issued_at: u64, nats: Value) -> Result<String, String> {
    let mut claims = Map::new();
    claims.insert("jti".into(), json!(""));
    claims.insert("iat".into(), json!(issued_at));
    claims.insert("iss".into(), json!(issuer.public_key()));
    claims.insert("name".into(), json!(name));
    claims.insert("sub".into(), json!(subject));
    claims.insert("nats".into(), nats);
    // The id is the hash of the claims without it, as the Go library computes it.
    let unhashed = serde_json::to_vec(&claims).expect("JSON serializes");
    claims.insert("jti".into(), json!(BASE32_NOPAD.encode(&Sha512_256::digest(&unhashed))));
    let payload = serde_json::to_vec(&claims).expect("JSON serializes");
    let signing_input = format!("{}.{}", BASE64URL_NOPAD.encode(HEADER.as_bytes()), BASE64URL_NOPAD.encode(&payload));
    let signature = issuer.sign(signing_input.as_bytes()).map_err(|e| e.to_string())?;
    Ok(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&signature)))
}

/// The claims of a JWT whose signature verifies against its `iss`; `None` for anything else.
pub fn verified_claims(jwt: &str) -> Option<Map<String, Value>> {
    let mut parts = jwt.trim().split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let claims: Map<String, Value> = serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).ok()?).ok()?;
    let issuer = nkeys::KeyPair::from_public_key(claims.get("iss")?.as_str()?).ok()?;
    let signature = BASE64URL_NOPAD.decode(signature.as_bytes()).ok()?;
    issuer.verify(format!("{header}.{payload}").as_bytes(), &signature).ok()?;
    Some(claims)
}

/// Whether `previous` (a valid JWT) says exactly what new claims would, apart from when it was
/// issued: then it is kept as it is, byte for byte.
pub fn unchanged(previous: &str, issuer: &str, subject: &str, name: &str, nats: &Value) -> bool {
    verified_claims(previous).is_some_and(|c| {
        c.get("iss").and_then(Value::as_str) == Some(issuer)
            && c.get("sub").and_then(Value::as_str) == Some(subject)
            && c.get("name").and_then(Value::as_str) == Some(name)
            && c.get("nats") == Some(nats)
    })
}

/// A `.creds` file: the user JWT and its seed, in the layout every NATS client reads.
pub fn creds_file(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n*************************************************************\n"
    )
}

/// The JWT and seed of a `.creds` file, when it has that layout.
pub fn parse_creds(text: &str) -> Option<(String, String)> {
    let section = |begin: &str| {
        let start = text.find(begin)? + begin.len();
        let rest = &text[start..];
        let end = rest.find("------END")?;
        Some(rest[..end].trim().to_string())
    };
    Some((
        section("-----BEGIN NATS USER JWT-----")?,
        section("-----BEGIN USER NKEY SEED-----")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifiable_claims_and_recognises_unchanged_ones() {
        let op = nkeys::KeyPair::new_operator();
        let nats = json!({"type": "operator", "version": 2});
        let jwt = sign(&op, &op.public_key(), "OP", 1, nats.clone()).unwrap();
        let claims = verified_claims(&jwt).unwrap();
        assert_eq!(claims["nats"], nats);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 52);
        assert!(unchanged(&jwt, &op.public_key(), &op.public_key(), "OP", &nats));
        assert!(!unchanged(&jwt, &op.public_key(), &op.public_key(), "OP2", &nats));
        let tampered = jwt.replacen('.', ".x", 1);
        assert!(verified_claims(&tampered).is_none());
    }

    #[test]
    fn creds_round_trip() {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let text = creds_file("a.b.c", &seed);
        assert_eq!(parse_creds(&text), Some(("a.b.c".to_string(), seed)));
        assert_eq!(parse_creds("garbage"), None);
    }
}
