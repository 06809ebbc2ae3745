//! A small indexed-colour PNG writer with its own deflate (fixed Huffman
//! codes, greedy LZ77), so charts need no image or compression crate.

/// Encode an 8-bit indexed image (`pixels.len() == w * h`) with `palette`.
pub fn encode(w: u32, h: u32, pixels: &[u8], palette: &[[u8; 3]]) -> Vec<u8> {
    assert_eq!(pixels.len(), (w * h) as usize);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]); // 8-bit, indexed, deflate, no filter set, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    let plte: Vec<u8> = palette.iter().flat_map(|c| c.iter().copied()).collect();
    chunk(&mut out, b"PLTE", &plte);
    let mut raw = Vec::with_capacity(pixels.len() + h as usize);
    for row in pixels.chunks(w as usize) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    chunk(&mut out, b"IDAT", &zlib(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(ty);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE), as PNG uses it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// `n` bits of `v`, least significant first.
    fn put(&mut self, v: u32, n: u32) {
        self.acc |= (v as u64) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A Huffman code of `n` bits, most significant first.
    fn code(&mut self, code: u32, n: u32) {
        let mut r = 0;
        for i in 0..n {
            r |= ((code >> i) & 1) << (n - 1 - i);
        }
        self.put(r, n);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

fn lit(b: &mut Bits, sym: u32) {
    match sym {
        0..=143 => b.code(0x30 + sym, 8),
        144..=255 => b.code(0x190 + sym - 144, 9),
        256..=279 => b.code(sym - 256, 7),
        _ => b.code(0xc0 + sym - 280, 8),
    }
}

fn emit_match(b: &mut Bits, len: usize, dist: usize) {
    let li = LEN_BASE.iter().rposition(|&x| x as usize <= len).unwrap();
    lit(b, 257 + li as u32);
    b.put((len - LEN_BASE[li] as usize) as u32, LEN_EXTRA[li] as u32);
    let di = DIST_BASE.iter().rposition(|&x| x as usize <= dist).unwrap();
    b.code(di as u32, 5);
    b.put(
        (dist - DIST_BASE[di] as usize) as u32,
        DIST_EXTRA[di] as u32,
    );
}

/// zlib stream: one fixed-Huffman deflate block with greedy LZ77.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // BTYPE = fixed
    const WIN: usize = 32768;
    const HB: usize = 15;
    let mut head = vec![usize::MAX; 1 << HB];
    let mut prev = vec![usize::MAX; data.len()];
    let hash = |i: usize| -> usize {
        let v = (data[i] as u32) << 16 | (data[i + 1] as u32) << 8 | data[i + 2] as u32;
        (v.wrapping_mul(2_654_435_761) >> (32 - HB)) as usize
    };
    let mut i = 0;
    while i < data.len() {
        let mut best = (0usize, 0usize);
        if i + 3 <= data.len() {
            let h = hash(i);
            let mut cand = head[h];
            let mut depth = 0;
            while cand != usize::MAX && i - cand <= WIN && depth < 32 {
                let max = (data.len() - i).min(258);
                let mut l = 0;
                while l < max && data[cand + l] == data[i + l] {
                    l += 1;
                }
                if l > best.0 {
                    best = (l, i - cand);
                    if l == max {
                        break;
                    }
                }
                cand = prev[cand];
                depth += 1;
            }
            prev[i] = head[h];
            head[h] = i;
        }
        if best.0 >= 3 {
            emit_match(&mut b, best.0, best.1);
            #[allow(clippy::needless_range_loop)]
            for j in i + 1..i + best.0 {
                if j + 3 <= data.len() {
                    let h = hash(j);
                    prev[j] = head[h];
                    head[h] = j;
                }
            }
            i += best.0;
        } else {
            lit(&mut b, data[i] as u32);
            i += 1;
        }
    }
    lit(&mut b, 256);
    let mut out = b.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_vector() {
        assert_eq!(super::crc32(b"123456789"), 0xcbf43926);
    }

    #[test]
    fn zlib_roundtrips_through_python() {
        let data: Vec<u8> = (0..20000u32)
            .map(|i| {
                if i % 700 < 600 {
                    7
                } else {
                    (i * 31 % 251) as u8
                }
            })
            .collect();
        let z = super::zlib(&data);
        assert!(z.len() < data.len() / 4);
        // Cross-check with an independent inflater when python3 is present.
        let dir = std::env::temp_dir().join(format!("loadgen-zlib-{}", std::process::id()));
        std::fs::write(&dir, &z).unwrap();
        if let Ok(o) = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys,zlib;sys.stdout.buffer.write(zlib.decompress(open(sys.argv[1],'rb').read()))")
            .arg(&dir)
            .output()
            && o.status.success()
        {
            assert_eq!(o.stdout, data);
        }
        let _ = std::fs::remove_file(dir);
    }
}
