//! Id generation against vectors produced by node with nanoid 5 and
//! uuidv7 1.2 (`tests/fixtures/ids/ids.json`): the random bytes were fixed
//! by replacing `crypto.getRandomValues`.

use std::sync::Mutex;

use ferry_core::{ManualTime, RandomSource};
use ferry_triplit::ids::{NANOID_ALPHABET, nanoid, nanoid_len, nanoid_len_from_args, uuid_v7};
use serde_json::{Value, json};

struct Bytes(Mutex<Vec<u8>>);
impl RandomSource for Bytes {
    fn fill(&self, buf: &mut [u8]) {
        let mut src = self.0.lock().expect("lock");
        for b in buf.iter_mut() {
            *b = if src.is_empty() { 0 } else { src.remove(0) };
        }
    }
}

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/ids/ids.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_array()
        .expect("bytes")
        .iter()
        .map(|b| u8::try_from(b.as_u64().expect("byte")).expect("u8"))
        .collect()
}

#[test]
fn alphabet_is_nanoids() {
    assert_eq!(fixture()["urlAlphabet"], json!(NANOID_ALPHABET));
}

#[test]
fn nanoid_matches_node_for_the_same_bytes() {
    let f = fixture();
    for case in f["nanoid"].as_array().expect("cases") {
        let bytes = bytes_of(&case["bytes"]);
        let rng = Bytes(Mutex::new(bytes.clone()));
        let want = case["id"].as_str().expect("id");
        let got = match case.get("size") {
            Some(size) => {
                let n = nanoid_len_from_args(&json!([size])).expect("size");
                nanoid_len(&rng, n)
            }
            None if bytes.len() == 21 => nanoid(&rng),
            None => nanoid_len(&rng, bytes.len()),
        };
        assert_eq!(got, want);
    }
    assert!(
        f["nanoidNegative"]
            .as_str()
            .expect("msg")
            .contains("Wrong ID size")
    );
    assert!(nanoid_len_from_args(&json!([-1])).is_err());
}

#[test]
fn uuid_v7_layout_matches_the_uuidv7_package() {
    let f = &fixture()["uuidv7FromFields"];
    let ms = f["unixTsMs"].as_u64().expect("ms");
    let rand_a = u16::try_from(f["randA"].as_u64().expect("a")).expect("12 bits");
    let rand_b = (f["randBHi"].as_u64().expect("hi") << 32) | f["randBLo"].as_u64().expect("lo");
    // uuid_v7 reads rand_a from 2 bytes (low 12 bits kept) and rand_b from 8
    // (low 62 bits kept), big-endian.
    let mut bytes = rand_a.to_be_bytes().to_vec();
    bytes.extend(rand_b.to_be_bytes());
    let rng = Bytes(Mutex::new(bytes));
    assert_eq!(
        uuid_v7(&rng, &ManualTime::new(ms)),
        f["uuid"].as_str().expect("uuid")
    );
}
