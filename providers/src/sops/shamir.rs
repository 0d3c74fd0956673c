//! Shamir's secret sharing over GF(2^8), as SOPS uses it for key groups: with several groups, each group's
//! master keys wrap one share of the data key, and `shamir_threshold` shares rebuild it.
//!
//! A share is the polynomial's value at x for every byte of the secret, followed by x itself (one byte, never
//! 0). The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1. The secret is each polynomial's
//! value at 0, found by Lagrange interpolation.
use rand::RngCore as _;

/// Multiplication in GF(2^8) (AES polynomial).
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// Inverse in GF(2^8): a^254 (0 has none; callers never pass it).
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e != 0 {
        if e & 1 != 0 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Why shares do not combine.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    #[error("fewer than two shares")]
    TooFew,
    #[error("shares differ in length or are empty")]
    Lengths,
    #[error("two shares have the same x coordinate, or one has x = 0")]
    Coordinates,
}

/// The secret the shares rebuild. With fewer shares than the threshold the result is garbage (the data key
/// then fails to decrypt the MAC, which is reported).
pub fn combine(shares: &[Vec<u8>]) -> Result<Vec<u8>, ShamirError> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFew);
    }
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::Lengths);
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err(ShamirError::Coordinates);
        }
    }
    // Lagrange basis at 0: l_j = prod_{m != j} x_m / (x_m - x_j); subtraction is XOR in GF(2^8).
    let basis: Vec<u8> = (0..xs.len())
        .map(|j| {
            xs.iter()
                .enumerate()
                .filter(|(m, _)| *m != j)
                .fold(1u8, |acc, (_, &xm)| mul(acc, mul(xm, inv(xm ^ xs[j]))))
        })
        .collect();
    Ok((0..len - 1)
        .map(|i| shares.iter().zip(&basis).fold(0u8, |acc, (s, &l)| acc ^ mul(s[i], l)))
        .collect())
}

/// Splits `secret` into `parts` shares of which any `threshold` rebuild it (2 <= threshold <= parts <= 255).
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Result<Vec<Vec<u8>>, ShamirError> {
    if threshold < 2 || parts < threshold || parts > 255 {
        return Err(ShamirError::TooFew);
    }
    if secret.is_empty() {
        return Err(ShamirError::Lengths);
    }
    let mut rng = rand::rng();
    let mut shares: Vec<Vec<u8>> = (1..=parts).map(|_| Vec::with_capacity(secret.len() + 1)).collect();
    let mut coeffs = vec![0u8; threshold - 1];
    for &byte in secret {
        rng.fill_bytes(&mut coeffs);
        for (i, share) in shares.iter_mut().enumerate() {
            // x runs 1..=parts (fits in u8: parts <= 255).
            let x = u8::try_from(i + 1).map_err(|_| ShamirError::TooFew)?;
            // Horner: ((c_{t-1} x + c_{t-2}) x + … + c_1) x + secret.
            let y = coeffs.iter().rev().fold(0u8, |acc, &c| mul(acc, x) ^ c);
            share.push(mul(y, x) ^ byte);
        }
    }
    for (i, share) in shares.iter_mut().enumerate() {
        share.push(u8::try_from(i + 1).map_err(|_| ShamirError::TooFew)?);
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic() {
        // The AES field's textbook example: {57} x {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn any_threshold_subset_rebuilds_the_secret() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 4, 3).unwrap();
        for skip in 0..4 {
            let subset: Vec<Vec<u8>> = shares
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, s)| s.clone())
                .collect();
            assert_eq!(combine(&subset).unwrap(), secret);
            assert_eq!(combine(&subset[..3]).unwrap(), secret);
        }
        // Two of a threshold of three do not.
        assert_ne!(combine(&shares[..2]).unwrap(), secret);
    }

    #[test]
    fn bad_shares() {
        assert_eq!(combine(&[vec![1, 2]]), Err(ShamirError::TooFew));
        assert_eq!(combine(&[vec![1, 2], vec![1, 2, 3]]), Err(ShamirError::Lengths));
        assert_eq!(combine(&[vec![1, 2], vec![3, 2]]), Err(ShamirError::Coordinates));
        assert_eq!(combine(&[vec![1, 0], vec![3, 2]]), Err(ShamirError::Coordinates));
    }
}
