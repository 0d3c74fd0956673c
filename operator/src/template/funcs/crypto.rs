//! sprig hashes, bcrypt/htpasswd, random values, key generation, and ESO's `rsaDecrypt`.
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use super::encoding::base64_encode;
use super::{Ctx, FnError, FnResult, i, s, str_val};
use crate::template::value::Value;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha1sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(hex(&Sha1::digest(s(&a[0]))))
}

pub fn sha256sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(hex(&Sha256::digest(s(&a[0]))))
}

pub fn sha512sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    str_val(hex(&Sha512::digest(s(&a[0]))))
}

pub fn adler32sum(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    const MOD: u32 = 65521;
    let (mut x, mut y) = (1u32, 0u32);
    for &b in s(&a[0]) {
        x = (x + u32::from(b)) % MOD;
        y = (y + x) % MOD;
    }
    str_val((y << 16 | x).to_string())
}

/// Go's `bcrypt.GenerateFromPassword(p, bcrypt.DefaultCost)`: `$2a$10$…`.
fn bcrypt_hash(ctx: &mut Ctx, pw: &[u8]) -> String {
    if pw.len() > 72 {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes".into();
    }
    if ctx.charge(10_000).is_err() {
        return "failed to encrypt string with bcrypt: template budget exhausted".into();
    }
    match bcrypt::hash_with_result(pw, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

pub fn bcrypt(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let h = bcrypt_hash(ctx, s(&a[0]));
    str_val(h)
}

pub fn htpasswd(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let user = s(&a[0]);
    if user.contains(&b':') {
        let mut out = b"invalid username: ".to_vec();
        out.extend_from_slice(user);
        return str_val(out);
    }
    let mut out = user.to_vec();
    out.push(b':');
    if s(&a[2]) == b"sha" {
        out.extend_from_slice(b"{SHA}");
        out.extend_from_slice(base64_encode(&Sha1::digest(s(&a[1]))).as_bytes());
    } else {
        out.extend_from_slice(bcrypt_hash(ctx, s(&a[1])).as_bytes());
    }
    str_val(out)
}

pub fn rand_bytes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rand::RngCore;
    let n = i(&a[0]);
    if n < 0 {
        return Err(FnError::msg("runtime error: makeslice: len out of range"));
    }
    ctx.check_len(n as u128 * 4 / 3)?;
    let mut buf = vec![0u8; n as usize];
    rand::rng().fill_bytes(&mut buf);
    str_val(base64_encode(&buf))
}

pub fn uuidv4(_: &mut Ctx, _: Vec<Value>) -> FnResult {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    str_val(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

pub fn gen_private_key(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}

pub fn rsa_decrypt(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
