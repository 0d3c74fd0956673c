//! sprig hashes, bcrypt/htpasswd, random values, key generation, and ESO's `rsaDecrypt`.
use rsa::sha2::Digest;
use rsa::sha2::{Sha256, Sha512};
use sha1::Sha1;

use super::encoding::base64_into;
use super::{Ctx, FnError, FnResult, i, s, text};
use crate::value::Value;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha1sum(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(hex(&Sha1::digest(s(&a[0]))))
}

pub fn sha256sum(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(hex(&Sha256::digest(s(&a[0]))))
}

pub fn sha512sum(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    ctx.str_value(hex(&Sha512::digest(s(&a[0]))))
}

pub fn adler32sum(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    const MOD: u32 = 65521;
    let (mut x, mut y) = (1u32, 0u32);
    for &b in s(&a[0]) {
        x = (x + u32::from(b)) % MOD;
        y = (y + x) % MOD;
    }
    ctx.str_value((y << 16 | x).to_string())
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
    ctx.str_value(h)
}

pub fn htpasswd(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let user = s(&a[0]);
    let mut out = ctx.buf();
    if user.contains(&b':') {
        out.extend_from_slice(b"invalid username: ");
        out.extend_from_slice(user);
        return Ok(out.into_value()?);
    }
    out.extend_from_slice(user);
    out.push(b':');
    if s(&a[2]) == b"sha" {
        out.extend_from_slice(b"{SHA}");
        base64_into(&mut out, &Sha1::digest(s(&a[1])));
    } else {
        out.extend_from_slice(bcrypt_hash(ctx, s(&a[1])).as_bytes());
    }
    Ok(out.into_value()?)
}

pub fn rand_bytes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rand::RngCore;
    let n = i(&a[0]);
    if n < 0 {
        return Err(FnError::msg("runtime error: makeslice: len out of range"));
    }
    ctx.check_len(n as u128 * 4 / 3)?;
    // The random bytes, then their base64.
    ctx.budget.charge(n as usize)?;
    let mut buf = vec![0u8; n as usize];
    rand::rng().fill_bytes(&mut buf);
    let mut out = ctx.buf();
    base64_into(&mut out, &buf);
    Ok(out.into_value()?)
}

pub fn uuidv4(ctx: &mut Ctx, _: Vec<Value>) -> FnResult {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    ctx.str_value(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// sprig's `genPrivateKey`: `rsa` (4096 bits, PKCS#1 `RSA PRIVATE KEY`) and `ed25519` (PKCS#8). `ecdsa` and `dsa`
/// need curve/group arithmetic this build leaves out; they render an explanation, as sprig does for its own failures.
pub fn gen_private_key(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    match s(&a[0]) {
        b"" | b"rsa" => {
            ctx.charge(200_000)?;
            let mut rng = getrandom::SysRng;
            let key = match rsa::PrivateKey::new(&mut rng, 4096) {
                Ok(k) => k,
                Err(e) => return ctx.str_value(format!("failed to generate private key: {e}")),
            };
            match key.to_pkcs1_der() {
                Ok(der) => super::pem::pem_value(ctx, "RSA PRIVATE KEY", der.as_bytes()),
                Err(e) => ctx.str_value(format!("failed to generate private key: {e}")),
            }
        }
        b"ed25519" => {
            use rand::RngCore;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let der = super::pkcs12::marshal_pkcs8(&super::pkcs12::PrivKey::Ed25519(seed));
            super::pem::pem_value(ctx, "PRIVATE KEY", &der)
        }
        b"ecdsa" | b"dsa" => ctx.str_value(format!(
            "failed to generate private key: {} is not supported by syncret",
            text(&a[0])
        )),
        other => {
            let mut out = b"Unknown type ".to_vec();
            out.extend_from_slice(other);
            ctx.str_value(out)
        }
    }
}

/// ESO's `rsaDecrypt scheme hash ciphertext privateKeyPEM`.
pub fn rsa_decrypt(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    match s(&a[0]) {
        b"None" => Ok(a[2].clone()),
        b"RSA-OAEP" => {
            let (block, _) = super::pem::decode(s(&a[3]));
            let block = block.ok_or_else(|| FnError::msg("failed to decode PEM block"))?;
            let key = super::pkcs12::parse_private_key(&block.bytes)
                .map_err(|e| FnError::msg(format!("could not parse private key: {e}")))?;
            let super::pkcs12::PrivKey::Rsa(pkcs1) = key else {
                return Err(FnError::msg("could not parse RSA private key"));
            };
            let key = rsa::PrivateKey::from_pkcs1_der(&pkcs1)
                .map_err(|_| FnError::msg("could not parse private key: crypto/rsa: invalid key"))?;
            let ct = s(&a[2]);
            let out = match s(&a[1]) {
                b"SHA1" => key.oaep_decrypt::<sha1::Sha1>(ct),
                b"SHA512" => key.oaep_decrypt::<Sha512>(ct),
                _ => key.oaep_decrypt::<Sha256>(ct),
            };
            let out = out.map_err(|_| FnError::msg("error decrypting data with RSA: crypto/rsa: decryption error"))?;
            ctx.str_value(out)
        }
        _ => Err(FnError::msg(format!(
            "decryption scheme {} is not supported",
            text(&a[0])
        ))),
    }
}
