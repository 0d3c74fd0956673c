//! sprig hashes, bcrypt/htpasswd, random values, key generation, and ESO's `rsaDecrypt`.
use sha1::Sha1;
use sha2::Digest;
use sha2::{Sha256, Sha512};

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

/// The templates of the Master Password algorithm sprig's `derivePassword` uses, and their character classes.
fn password_templates(kind: &[u8]) -> Option<&'static [&'static [u8]]> {
    Some(match kind {
        b"maximum" => &[b"anoxxxxxxxxxxxxxxxxx", b"axxxxxxxxxxxxxxxxxno"],
        b"long" => &[
            b"CvcvnoCvcvCvcv",
            b"CvcvCvcvnoCvcv",
            b"CvcvCvcvCvcvno",
            b"CvccnoCvcvCvcv",
            b"CvccCvcvnoCvcv",
            b"CvccCvcvCvcvno",
            b"CvcvnoCvccCvcv",
            b"CvcvCvccnoCvcv",
            b"CvcvCvccCvcvno",
            b"CvcvnoCvcvCvcc",
            b"CvcvCvcvnoCvcc",
            b"CvcvCvcvCvccno",
            b"CvccnoCvccCvcv",
            b"CvccCvccnoCvcv",
            b"CvccCvccCvcvno",
            b"CvcvnoCvccCvcc",
            b"CvcvCvccnoCvcc",
            b"CvcvCvccCvccno",
            b"CvccnoCvcvCvcc",
            b"CvccCvcvnoCvcc",
            b"CvccCvcvCvccno",
        ],
        b"medium" => &[b"CvcnoCvc", b"CvcCvcno"],
        b"short" => &[b"Cvcn"],
        b"basic" => &[b"aaanaaan", b"aannaaan", b"aaannaaa"],
        b"pin" => &[b"nnnn"],
        _ => return None,
    })
}

fn password_chars(class: u8) -> &'static [u8] {
    match class {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// scrypt's working memory for sprig's parameters (N = 32768, r = 8): 128 · r · N bytes.
const SCRYPT_SCRATCH: usize = 128 * 8 * 32768;

/// sprig's `derivePassword counter type password user site` (the Master Password algorithm): scrypt of the password
/// salted with the user, an HMAC-SHA256 of the site and counter keyed with it, and a template of the type filled
/// from that seed. scrypt's 32 MiB of scratch space is charged to the render's budget while it runs.
pub fn derive_password(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use hmac::{KeyInit, Mac};
    const SEED: &[u8] = b"com.lyndir.masterpassword";
    let counter = match a[0] {
        Value::Uint64(c) => c as u32,
        _ => 0,
    };
    let (kind, password, user, site) = (s(&a[1]), s(&a[2]), s(&a[3]), s(&a[4]));
    let Some(templates) = password_templates(kind) else {
        let mut out = ctx.buf();
        out.extend_from_slice(b"cannot find password template ");
        out.extend_from_slice(kind);
        return Ok(out.into_value()?);
    };
    // Go's uint32(len(x)): lengths wrap, as there.
    let len32 = |b: &[u8]| (b.len() as u32).to_be_bytes();
    let mut salt = SEED.to_vec();
    salt.extend_from_slice(&len32(user));
    salt.extend_from_slice(user);
    let mut key = [0u8; 64];
    {
        let _scratch = ctx.budget.scratch(SCRYPT_SCRATCH)?;
        // About as much work as 100 000 template steps.
        ctx.charge(100_000)?;
        let params =
            scrypt::Params::new(15, 8, 2).map_err(|e| FnError::msg(format!("failed to derive password: {e}")))?;
        scrypt::scrypt(password, &salt, &params, &mut key)
            .map_err(|e| FnError::msg(format!("failed to derive password: {e}")))?;
    }
    let mut message = SEED.to_vec();
    message.extend_from_slice(&len32(site));
    message.extend_from_slice(site);
    message.extend_from_slice(&counter.to_be_bytes());
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|_| FnError::msg("failed to derive password: invalid key"))?;
    mac.update(&message);
    let seed = mac.finalize().into_bytes();
    let template = templates[usize::from(seed[0]) % templates.len()];
    let mut out = ctx.buf_with(template.len())?;
    for (i, &class) in template.iter().enumerate() {
        let chars = password_chars(class);
        // The seed is 32 bytes and the longest template 20 characters.
        let pick = seed.get(i + 1).copied().unwrap_or(0);
        out.push(chars[usize::from(pick) % chars.len()]);
    }
    Ok(out.into_value()?)
}

/// sprig's AES key: the password's first 32 bytes, zero-padded.
fn aes_key(password: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password[..n]);
    key
}

/// sprig's `encryptAES password plaintext`: AES-256-CBC with a random IV and PKCS#7 padding, base64 of IV and
/// ciphertext; an empty plaintext gives "".
pub fn encrypt_aes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
    use rand::RngCore;
    let (password, plain) = (s(&a[0]), s(&a[1]));
    if plain.is_empty() {
        return Ok(Value::from_static(b""));
    }
    let pad = 16 - plain.len() % 16;
    let total = plain.len().saturating_add(pad).saturating_add(16);
    ctx.check_len(total as u128)?;
    ctx.budget.charge(total)?;
    let mut buf = vec![0u8; total];
    rand::rng().fill_bytes(&mut buf[..16]);
    buf[16..16 + plain.len()].copy_from_slice(plain);
    buf[16 + plain.len()..].fill(pad as u8);
    let (iv, body) = buf.split_at_mut(16);
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| FnError::msg("crypto/cipher: internal error"))?;
    cbc::Encryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into())
        .encrypt_padded::<NoPadding>(body, body.len())
        .map_err(|_| FnError::msg("crypto/cipher: input not full blocks"))?;
    let mut out = ctx.buf();
    base64_into(&mut out, &buf);
    Ok(out.into_value()?)
}

/// sprig's `decryptAES password base64`: no integrity check, and its unpadding trusts the last byte, so a wrong key
/// gives garbage or Go's slice panic, as in ESO.
pub fn decrypt_aes(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::NoPadding};
    let (password, crypt64) = (s(&a[0]), s(&a[1]));
    if crypt64.is_empty() {
        return Ok(Value::from_static(b""));
    }
    let crypt = super::encoding::go_b64_decode(crypt64)
        .map_err(|at| FnError::msg(format!("illegal base64 data at input byte {at}")))?;
    ctx.budget.charge(crypt.len())?;
    if crypt.len() < 16 {
        // Go's DecodeString allocates DecodedLen(len(input)) bytes: the capacity its panic reports.
        let capacity = crypt64.len() / 4 * 3;
        return Err(FnError::msg(format!(
            "runtime error: slice bounds out of range [:16] with capacity {capacity}"
        )));
    }
    let (iv, body) = crypt.split_at(16);
    if body.len() % 16 != 0 {
        return Err(FnError::msg("crypto/cipher: input not full blocks"));
    }
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| FnError::msg("crypto/cipher: internal error"))?;
    let mut plain = body.to_vec();
    cbc::Decryptor::<aes::Aes256>::new(&aes_key(password).into(), &iv.into())
        .decrypt_padded::<NoPadding>(&mut plain)
        .map_err(|_| FnError::msg("crypto/cipher: input not full blocks"))?;
    let Some(&last) = plain.last() else {
        return Err(FnError::msg("runtime error: index out of range [-1]"));
    };
    let end = plain.len() as i64 - i64::from(last);
    if end < 0 {
        return Err(FnError::msg(format!(
            "runtime error: slice bounds out of range [:{end}]"
        )));
    }
    ctx.str_value(&plain[..end as usize])
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
