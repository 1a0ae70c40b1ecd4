//! TLS ClientHellos built byte by byte, small and large, to see whether a server's first
//! answer comes back: a handshake is not completed, so no cryptography is needed.
//!
//! Clients that offer a post-quantum key share (X25519MLKEM768, as current browsers and TLS
//! libraries do) send hellos of 1.4–1.9 KB: more than one packet on a 1500-byte path. Behind a
//! path-MTU black hole those hang while small hellos pass. The large hello here carries such a
//! share, its ML-KEM part a well-formed encapsulation key (every coefficient below q), so a
//! server that supports the group can use it and one that does not picks X25519 instead.

/// The X25519MLKEM768 hybrid group (draft-ietf-tls-ecdhe-mlkem).
pub const X25519_MLKEM768: u16 = 0x11ec;
const X25519: u16 = 0x001d;
/// ML-KEM-768: 3 polynomials of 256 12-bit coefficients, then the 32-byte seed rho.
const MLKEM768_EK_BYTES: usize = 3 * 384 + 32;
const MLKEM_Q: u16 = 3329;
/// Zero bytes of the padding extension in the large hello.
const LARGE_PADDING: usize = 256;

/// A ClientHello record for `server_name` (no SNI for an IP literal); `large` adds the hybrid
/// post-quantum key share. `seed` varies the random fields.
pub fn client_hello(server_name: &str, large: bool, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed | 1);
    let mut ext = Vec::new();
    if server_name.parse::<std::net::IpAddr>().is_err() && !server_name.is_empty() {
        let name = server_name.as_bytes();
        let mut list = Vec::new();
        list.push(0); // host_name
        put_u16(&mut list, name.len());
        list.extend_from_slice(name);
        let mut body = Vec::new();
        put_u16(&mut body, list.len());
        body.extend_from_slice(&list);
        extension(&mut ext, 0x0000, &body);
    }
    let mut groups = Vec::new();
    if large {
        groups.push(X25519_MLKEM768);
    }
    groups.extend([X25519, 0x0017, 0x0018]);
    extension(&mut ext, 0x000a, &u16_list(&groups));
    extension(&mut ext, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    extension(
        &mut ext,
        0x000d,
        &u16_list(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]),
    );
    let mut alpn = Vec::new();
    alpn.push(8);
    alpn.extend_from_slice(b"http/1.1");
    let mut alpn_body = Vec::new();
    put_u16(&mut alpn_body, alpn.len());
    alpn_body.extend_from_slice(&alpn);
    extension(&mut ext, 0x0010, &alpn_body);
    extension(&mut ext, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // TLS 1.3, 1.2
    extension(&mut ext, 0x002d, &[1, 1]); // psk_dhe_ke
    let mut shares = Vec::new();
    let x25519: Vec<u8> = (0..32).map(|_| rng.byte()).collect();
    if large {
        let mut hybrid = mlkem768_encapsulation_key(&mut rng);
        hybrid.extend_from_slice(&x25519);
        key_share(&mut shares, X25519_MLKEM768, &hybrid);
    }
    key_share(&mut shares, X25519, &x25519);
    let mut share_body = Vec::new();
    put_u16(&mut share_body, shares.len());
    share_body.extend_from_slice(&shares);
    extension(&mut ext, 0x0033, &share_body);
    if large {
        // RFC 7685 padding, as BoringSSL-based clients send: with it the hello is the size of a
        // browser's (about 1.7 KB) rather than just under one segment.
        extension(&mut ext, 0x0015, &[0; LARGE_PADDING]);
    }

    let mut hello = Vec::new();
    hello.extend_from_slice(&[0x03, 0x03]);
    hello.extend((0..32).map(|_| rng.byte()));
    hello.push(32);
    hello.extend((0..32).map(|_| rng.byte()));
    let suites = u16_list(&[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ]);
    hello.extend_from_slice(&suites);
    hello.extend_from_slice(&[1, 0]); // compression: null
    put_u16(&mut hello, ext.len());
    hello.extend_from_slice(&ext);

    let mut handshake = vec![0x01];
    put_u24(&mut handshake, hello.len());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    put_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// What the first bytes of an answer to a ClientHello are.
pub fn first_record(answer: &[u8]) -> &'static str {
    match answer {
        [] => "nothing",
        [0x16, 0x03, _, _, _, 0x02, ..] => "a ServerHello",
        [0x16, 0x03, ..] => "a TLS handshake record",
        [0x15, 0x03, ..] => "a TLS alert",
        _ => "bytes that are not TLS",
    }
}

/// A well-formed ML-KEM-768 encapsulation key: coefficients drawn below q and packed 12 bits
/// each, then rho. FIPS 203 requires a server to check the coefficients; random bytes would
/// fail that check about every time.
fn mlkem768_encapsulation_key(rng: &mut XorShift) -> Vec<u8> {
    let mut out = Vec::with_capacity(MLKEM768_EK_BYTES);
    for _ in 0..3 * 256 / 2 {
        let a = rng.below(MLKEM_Q);
        let b = rng.below(MLKEM_Q);
        out.push((a & 0xff) as u8);
        out.push(((a >> 8) | ((b & 0x0f) << 4)) as u8);
        out.push((b >> 4) as u8);
    }
    out.extend((0..32).map(|_| rng.byte()));
    out
}

fn key_share(out: &mut Vec<u8>, group: u16, key: &[u8]) {
    out.extend_from_slice(&group.to_be_bytes());
    put_u16(out, key.len());
    out.extend_from_slice(key);
}

fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16(out, body.len());
    out.extend_from_slice(body);
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u16(&mut out, values.len() * 2);
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

fn put_u16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u16).to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_be_bytes()[1..]);
}

/// Not for secrets: the hello's random fields only need to differ between probes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    /// Uniform below `n` by rejection, so every coefficient value is as likely.
    fn below(&mut self, n: u16) -> u16 {
        loop {
            let v = (self.next() & 0x0fff) as u16;
            if v < n {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_at(b: &[u8], at: usize) -> usize {
        usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
    }

    #[test]
    fn record_and_handshake_lengths_add_up() {
        for large in [false, true] {
            let h = client_hello("api.example.test", large, 7);
            assert_eq!(&h[..3], &[0x16, 0x03, 0x01]);
            assert_eq!(len_at(&h, 3), h.len() - 5);
            assert_eq!(h[5], 0x01);
            let hs = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
            assert_eq!(hs, h.len() - 9);
        }
    }

    #[test]
    fn the_large_hello_spans_two_packets_and_the_small_one_does_not() {
        let small = client_hello("api.example.test", false, 1);
        let large = client_hello("api.example.test", true, 1);
        assert!(small.len() < 400, "{}", small.len());
        // Over the 1460 bytes of one TCP segment on a 1500-byte path.
        assert!(large.len() > 1460, "{}", large.len());
        assert_eq!(
            large.len() - small.len(),
            (2 + 2 + 2 + 1216) + (2 + 2 + LARGE_PADDING)
        );
    }

    #[test]
    fn the_mlkem_key_is_well_formed() {
        let key = mlkem768_encapsulation_key(&mut XorShift(99));
        assert_eq!(key.len(), MLKEM768_EK_BYTES);
        for c in key[..3 * 384].chunks(3) {
            let a = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
            let b = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
            assert!(a < MLKEM_Q && b < MLKEM_Q);
        }
    }

    #[test]
    fn an_ip_literal_gets_no_server_name() {
        let with = client_hello("api.example.test", false, 3);
        let without = client_hello("127.0.0.1", false, 3);
        assert_eq!(
            with.len() - without.len(),
            4 + 2 + 1 + 2 + "api.example.test".len()
        );
    }

    #[test]
    fn answers_are_named() {
        assert_eq!(
            first_record(&[0x16, 0x03, 0x03, 0, 90, 0x02]),
            "a ServerHello"
        );
        assert_eq!(first_record(&[0x15, 0x03, 0x03, 0, 2]), "a TLS alert");
        assert_eq!(first_record(b"HTTP/1.1 400"), "bytes that are not TLS");
        assert_eq!(first_record(&[]), "nothing");
    }
}
